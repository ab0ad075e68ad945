"""Parsing an OpenAI-compatible streaming text response (vLLM flavour) into engine events.

The upstream is a miner's own inference server, so parsing is strict: every chunk is decoded
into the Structs below with size limits, every token must come with its id, every choice must
end with ``stop`` or ``length``, and the stream must end with ``[DONE]``.

Token ids come from the chunk's ``token_ids`` (vLLM's ``return_token_ids``) when present, else
from the logprobs' ``token_id:N`` strings (vLLM's ``return_tokens_as_token_ids``). When one chunk
carries several tokens, its text is attached to the *last* of them (the earlier ones get empty
text): the text is only known to be visible once the whole chunk has arrived.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from inference.base import ChoiceEnd, EngineError, EngineInputError, TextEvent, TokenEvent, TopToken

MAX_TOKENS_PER_CHUNK = 4096
MAX_TOP = 64
TOKEN_ID_PREFIX = "token_id:"  # noqa: S105 - vLLM's token-id prefix, not a secret
Text = Annotated[str, Meta(max_length=1 << 20)]
ShortText = Annotated[str, Meta(max_length=1024)]
ByteList = Annotated[list[Annotated[int, Meta(ge=0, le=255)]], Meta(max_length=1024)]


class _TopEntry(msgspec.Struct):
    token: ShortText
    logprob: float
    bytes: ByteList | None = None


class _ContentEntry(msgspec.Struct):
    token: ShortText
    logprob: float
    bytes: ByteList | None = None
    top_logprobs: Annotated[list[_TopEntry], Meta(max_length=MAX_TOP)] | None = None


class _ChatLogprobs(msgspec.Struct):
    content: Annotated[list[_ContentEntry], Meta(max_length=MAX_TOKENS_PER_CHUNK)] | None = None


class _CompletionLogprobs(msgspec.Struct):
    tokens: Annotated[list[ShortText], Meta(max_length=MAX_TOKENS_PER_CHUNK)] = []
    token_logprobs: Annotated[list[float | None], Meta(max_length=MAX_TOKENS_PER_CHUNK)] = []
    top_logprobs: (
        Annotated[list[dict[ShortText, float] | None], Meta(max_length=MAX_TOKENS_PER_CHUNK)] | None
    ) = None


class _Delta(msgspec.Struct):
    content: Text | None = None
    role: ShortText | None = None


TokenIds = Annotated[list[Annotated[int, Meta(ge=0)]], Meta(max_length=MAX_TOKENS_PER_CHUNK)]


class _ChatChoice(msgspec.Struct):
    index: Annotated[int, Meta(ge=0)]
    delta: _Delta = msgspec.field(default_factory=_Delta)
    logprobs: _ChatLogprobs | None = None
    finish_reason: ShortText | None = None
    token_ids: TokenIds | None = None


class _CompletionChoice(msgspec.Struct):
    index: Annotated[int, Meta(ge=0)]
    text: Text = ""
    logprobs: _CompletionLogprobs | None = None
    finish_reason: ShortText | None = None
    token_ids: TokenIds | None = None


class _ErrorBody(msgspec.Struct):
    message: Text = ""
    type: ShortText | None = None
    code: ShortText | int | None = None


class _ChatChunk(msgspec.Struct):
    choices: Annotated[list[_ChatChoice], Meta(max_length=64)] = []
    error: _ErrorBody | None = None
    object: ShortText | None = None
    message: Text | None = None
    type: ShortText | None = None
    code: ShortText | int | None = None


class _CompletionChunk(msgspec.Struct):
    choices: Annotated[list[_CompletionChoice], Meta(max_length=64)] = []
    error: _ErrorBody | None = None
    object: ShortText | None = None
    message: Text | None = None
    type: ShortText | None = None
    code: ShortText | int | None = None


def _refusal(error: _ErrorBody | _ChatChunk | _CompletionChunk) -> bool:
    """vLLM streams a request's validation error as ``{"error": {..., "code": 400}}`` (or with
    the fields at the top level and ``"object": "error"``)."""
    return error.code in (400, 422, "400", "422") or error.type in (
        "BadRequestError",
        "invalid_request_error",
    )


_chat_decoder = msgspec.json.Decoder(_ChatChunk)
_completion_decoder = msgspec.json.Decoder(_CompletionChunk)


def parse_token_id(token: str) -> int:
    if not token.startswith(TOKEN_ID_PREFIX):
        raise EngineError(
            "the upstream server did not return token ids (got token "
            f"{token[:40]!r}); a miner must return them: run vLLM with "
            "--return-tokens-as-token-ids or a server that honours return_tokens_as_token_ids"
        )
    try:
        value = int(token[len(TOKEN_ID_PREFIX) :])
    except ValueError:
        raise EngineError(f"malformed token id {token[:40]!r} from the upstream server") from None
    if value < 0:
        raise EngineError(f"negative token id {value} from the upstream server")
    return value


class _Step(msgspec.Struct):
    token_id: int
    logprob: float
    token: str
    raw: bytes
    top: tuple[TopToken, ...]


class StreamAssembler:
    """Feed decoded SSE ``data`` payloads; get ``TokenEvent``/``ChoiceEnd`` events."""

    def __init__(self, *, chat: bool, n: int, top_logprobs: int) -> None:
        self.chat = chat
        self.n = n
        self.top_logprobs = top_logprobs
        self._pending = [""] * n
        self._finished = [False] * n
        self.done = False

    def feed(self, payload: bytes) -> list[TextEvent]:
        if self.done:
            raise EngineError("the upstream server sent data after [DONE]")
        if payload == b"[DONE]":
            self.done = True
            missing = [i for i, finished in enumerate(self._finished) if not finished]
            if missing:
                raise EngineError(f"the upstream stream ended without finishing choices {missing}")
            return []
        try:
            chunk = (_chat_decoder if self.chat else _completion_decoder).decode(payload)
        except msgspec.DecodeError as exc:
            raise EngineError(f"malformed chunk from the upstream server: {exc}") from None
        if chunk.error is not None or chunk.object == "error":
            message = chunk.error.message if chunk.error is not None else chunk.message
            if _refusal(chunk.error if chunk.error is not None else chunk):
                raise EngineInputError(
                    f"the upstream server refused the request: {(message or '')[:500]}"
                )
            raise EngineError(f"the upstream server failed: {(message or '')[:500]}")
        events: list[TextEvent] = []
        for choice in chunk.choices:
            events.extend(self._choice(choice))
        return events

    def _choice(self, choice: _ChatChoice | _CompletionChoice) -> list[TextEvent]:
        index = choice.index
        if index >= self.n:
            raise EngineError(f"the upstream server sent choice {index} for n={self.n}")
        if self._finished[index]:
            raise EngineError(f"the upstream server continued choice {index} after it finished")
        if isinstance(choice, _ChatChoice):
            text = choice.delta.content or ""
            steps = self._chat_steps(choice)
        else:
            text = choice.text
            steps = self._completion_steps(choice)
        events: list[TextEvent] = []
        if not steps:
            self._pending[index] += text
        else:
            text, self._pending[index] = self._pending[index] + text, ""
            for position, step in enumerate(steps):
                last = position == len(steps) - 1
                token = step.token or (text if len(steps) == 1 else "")
                events.append(
                    TokenEvent(
                        choice=index,
                        token_id=step.token_id,
                        token=token,
                        text=text if last else "",
                        logprob=step.logprob,
                        token_bytes=step.raw,
                        top=step.top,
                    )
                )
        if choice.finish_reason is not None:
            if choice.finish_reason not in ("stop", "length"):
                raise EngineError(
                    f"the upstream server ended choice {index} with {choice.finish_reason!r}"
                )
            reason: Literal["stop", "length"] = (
                "stop" if choice.finish_reason == "stop" else "length"
            )
            self._finished[index] = True
            tail, self._pending[index] = self._pending[index], ""
            events.append(ChoiceEnd(choice=index, finish_reason=reason, text=tail))
        return events

    def _check_ids(self, ids: list[int] | None, parsed: list[int]) -> list[int]:
        if ids is not None and parsed and ids != parsed:
            raise EngineError("the upstream server's token_ids disagree with its logprobs")
        return ids if ids is not None else parsed

    def _chat_steps(self, choice: _ChatChoice) -> list[_Step]:
        content = choice.logprobs.content if choice.logprobs is not None else None
        if not content:
            if choice.token_ids:
                raise EngineError("the upstream server sent tokens without logprobs")
            return []
        parsed = [parse_token_id(entry.token) for entry in content]
        ids = self._check_ids(choice.token_ids, parsed)
        steps: list[_Step] = []
        for token_id, entry in zip(ids, content, strict=True):
            raw = bytes(entry.bytes) if entry.bytes is not None else b""
            top: tuple[TopToken, ...] = ()
            if self.top_logprobs and entry.top_logprobs:
                alternatives = sorted(entry.top_logprobs, key=lambda t: -t.logprob)
                top = tuple(
                    TopToken(
                        token_id=parse_token_id(alt.token),
                        token=bytes(alt.bytes).decode("utf-8", "replace") if alt.bytes else "",
                        logprob=alt.logprob,
                        token_bytes=bytes(alt.bytes) if alt.bytes else b"",
                    )
                    for alt in alternatives[: self.top_logprobs]
                )
            steps.append(
                _Step(
                    token_id=token_id,
                    logprob=entry.logprob,
                    token=raw.decode("utf-8", "replace"),
                    raw=raw,
                    top=top,
                )
            )
        return steps

    def _completion_steps(self, choice: _CompletionChoice) -> list[_Step]:
        logprobs = choice.logprobs
        if logprobs is None or not logprobs.tokens:
            if choice.token_ids:
                raise EngineError("the upstream server sent tokens without logprobs")
            return []
        if len(logprobs.token_logprobs) != len(logprobs.tokens):
            raise EngineError("the upstream server's logprobs lists differ in length")
        parsed = [parse_token_id(token) for token in logprobs.tokens]
        ids = self._check_ids(choice.token_ids, parsed)
        tops = logprobs.top_logprobs or [None] * len(ids)
        if len(tops) != len(ids):
            raise EngineError("the upstream server's top_logprobs list has the wrong length")
        steps: list[_Step] = []
        for token_id, logprob, alternatives in zip(ids, logprobs.token_logprobs, tops, strict=True):
            if logprob is None:
                raise EngineError("the upstream server sent a token without its logprob")
            top: tuple[TopToken, ...] = ()
            if self.top_logprobs and alternatives:
                ranked = sorted(alternatives.items(), key=lambda item: -item[1])
                top = tuple(
                    TopToken(token_id=parse_token_id(name), token="", logprob=value)
                    for name, value in ranked[: self.top_logprobs]
                )
            steps.append(_Step(token_id=token_id, logprob=logprob, token="", raw=b"", top=top))
        return steps
