"""Engine token events → OpenAI chat / completions JSON, with logprobs and token ids always.

Streams: each batch of events already available becomes one chunk per choice (``data: ...``
events concatenated into one write). The first chunk of a choice carries ``delta.role``, the
last its ``finish_reason``; every chunk carries its tokens' logprobs and ``token_ids`` (possibly
empty lists). Chunks are the strict ``protocol.miner`` types, so what we send is exactly what the
gateway parses. Non-stream responses are the same data gathered per choice.

Logprobs are clamped into ``[-9999, 0]`` (vLLM's stand-in for ``-inf``; JSON has no infinity).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, Literal, TypeVar

import msgspec

from inference.base import ChoiceEnd, TextEvent, TokenEvent
from miner_server.textmap import TextCall
from protocol.miner import (
    MinerChatChunk,
    MinerChatChunkChoice,
    MinerChatLogprobs,
    MinerCompletionChoice,
    MinerCompletionChunk,
    MinerCompletionLogprobs,
    MinerDelta,
)
from protocol.openai.chat import AssistantMessage
from protocol.openai.common import TokenLogprob, TopLogprob, Usage
from protocol.sse import data_event

ENCODER = msgspec.json.Encoder()
MIN_LOGPROB = -9999.0
MAX_TOKEN_BYTES = 64

Finish = Literal["stop", "length"]


# ---------------------------------------------------------------------------------------------
# Non-stream response shapes: OpenAI's, plus `token_ids` per choice.


class ChatChoiceOut(msgspec.Struct):
    index: int
    message: AssistantMessage
    logprobs: MinerChatLogprobs
    finish_reason: Finish | None
    token_ids: list[int]


class ChatCompletionOut(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[ChatChoiceOut]
    usage: Usage
    object: Literal["chat.completion"] = "chat.completion"


class CompletionChoiceOut(msgspec.Struct):
    index: int
    text: str
    logprobs: MinerCompletionLogprobs
    finish_reason: Finish | None
    token_ids: list[int]


class CompletionOut(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[CompletionChoiceOut]
    usage: Usage
    object: Literal["text_completion"] = "text_completion"


def _logprob(value: float) -> float:
    if MIN_LOGPROB <= value <= 0.0:
        return value
    return 0.0 if value > 0.0 else MIN_LOGPROB  # -inf and NaN become the floor


def _token_text(event: TokenEvent, as_ids: bool) -> str:
    return f"token_id:{event.token_id}" if as_ids else event.token


def _token_bytes(data: bytes) -> list[int] | None:
    return list(data) if len(data) <= MAX_TOKEN_BYTES else None


# ---------------------------------------------------------------------------------------------
# Per-choice accumulators.


class _ChatPart:
    __slots__ = ("finish", "ids", "logprobs", "texts")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.logprobs: list[TokenLogprob] = []
        self.ids: list[int] = []
        self.finish: Finish | None = None

    def add(self, event: TextEvent, top: int, as_ids: bool) -> None:
        if isinstance(event, ChoiceEnd):
            self.texts.append(event.text)
            self.finish = event.finish_reason
            return
        self.texts.append(event.text)
        self.ids.append(event.token_id)
        token = _token_text(event, as_ids)
        alternatives: list[TopLogprob] = []
        for alt in event.top[:top]:
            shown = f"token_id:{alt.token_id}" if as_ids else alt.token
            # The token's raw bytes (a byte-fallback token is its one byte, not the UTF-8 of the
            # U+FFFD its text shows); with token ids as tokens, those of the shown string (as
            # vLLM reports them).
            alt_raw = shown.encode() if as_ids else (alt.token_bytes or alt.token.encode())
            alternatives.append(
                TopLogprob(token=shown, logprob=_logprob(alt.logprob), bytes=_token_bytes(alt_raw))
            )
        raw = token.encode() if as_ids else (event.token_bytes or event.token.encode())
        self.logprobs.append(
            TokenLogprob(
                token=token,
                logprob=_logprob(event.logprob),
                bytes=_token_bytes(raw),
                top_logprobs=alternatives,
            )
        )


class _CompletionPart:
    __slots__ = ("finish", "ids", "logprobs", "offset", "offsets", "texts", "tokens", "tops")

    def __init__(self, offset: int) -> None:
        self.texts: list[str] = []
        self.tokens: list[str] = []
        self.logprobs: list[float | None] = []
        self.tops: list[dict[str, float] | None] = []
        self.offsets: list[int] = []
        self.ids: list[int] = []
        self.finish: Finish | None = None
        self.offset = offset  # where the next token's text starts in the choice's text

    def add(self, event: TextEvent, top: int, as_ids: bool) -> None:
        self.texts.append(event.text)
        if isinstance(event, ChoiceEnd):
            self.finish = event.finish_reason
            self.offset += len(event.text)
            return
        self.ids.append(event.token_id)
        self.tokens.append(_token_text(event, as_ids))
        self.logprobs.append(_logprob(event.logprob))
        self.offsets.append(self.offset)
        self.offset += len(event.text)
        if top:
            self.tops.append(
                {
                    (f"token_id:{alt.token_id}" if as_ids else alt.token): _logprob(alt.logprob)
                    for alt in event.top[:top]
                }
            )

    def logprobs_out(self, top: int) -> MinerCompletionLogprobs:
        return MinerCompletionLogprobs(
            tokens=self.tokens,
            token_logprobs=self.logprobs,
            top_logprobs=self.tops if top else None,
            text_offset=self.offsets,
        )


# ---------------------------------------------------------------------------------------------
# Renderers: one per response, fed engine events.

P = TypeVar("P", _ChatPart, _CompletionPart)


class _Renderer(ABC, Generic[P]):
    __slots__ = ("_call", "_created", "_id", "completion_tokens")

    def __init__(self, call: TextCall, response_id: str, created: int) -> None:
        self._call = call
        self._id = response_id
        self._created = created
        self.completion_tokens = 0

    @abstractmethod
    def _new_part(self, index: int) -> P: ...

    @abstractmethod
    def _chunk(self, index: int, part: P) -> bytes: ...

    @abstractmethod
    def _usage_chunk(self, used: Usage) -> bytes: ...

    @abstractmethod
    def _response(self, parts: dict[int, P], used: Usage) -> bytes: ...

    def _group(self, events: list[TextEvent], parts: dict[int, P]) -> None:
        top, as_ids = self._call.top_logprobs, self._call.tokens_as_ids
        for event in events:
            part = parts.get(event.choice)
            if part is None:
                part = parts[event.choice] = self._new_part(event.choice)
            part.add(event, top, as_ids)
        self.completion_tokens += sum(1 for event in events if isinstance(event, TokenEvent))

    def chunks(self, events: list[TextEvent]) -> bytes:
        """SSE bytes: one chunk per choice present in `events`."""
        parts: dict[int, P] = {}
        self._group(events, parts)
        return b"".join([self._chunk(index, part) for index, part in parts.items()])

    def usage_chunk(self, prompt_tokens: int) -> bytes:
        """The stream's closing usage chunk (``choices: []``)."""
        return self._usage_chunk(usage(prompt_tokens, self.completion_tokens))

    def response(self, events: list[TextEvent], prompt_tokens: int) -> bytes:
        """The whole non-stream response body."""
        parts = {index: self._new_part(index) for index in range(self._call.request.n)}
        self._group(events, parts)
        return self._response(parts, usage(prompt_tokens, self.completion_tokens))


class ChatRenderer(_Renderer[_ChatPart]):
    __slots__ = ("_started",)

    def __init__(self, call: TextCall, response_id: str, created: int) -> None:
        super().__init__(call, response_id, created)
        self._started: set[int] = set()

    def _new_part(self, index: int) -> _ChatPart:
        return _ChatPart()

    def _chunk(self, index: int, part: _ChatPart) -> bytes:
        first = index not in self._started
        if first:
            self._started.add(index)
        choice = MinerChatChunkChoice(
            index=index,
            delta=MinerDelta(
                role="assistant" if first else None, content="".join(part.texts) or None
            ),
            logprobs=MinerChatLogprobs(content=part.logprobs),
            finish_reason=part.finish,
            token_ids=part.ids,
        )
        chunk = MinerChatChunk(
            id=self._id, created=self._created, model=self._call.model, choices=[choice]
        )
        return data_event(ENCODER.encode(chunk))

    def _usage_chunk(self, used: Usage) -> bytes:
        chunk = MinerChatChunk(
            id=self._id, created=self._created, model=self._call.model, choices=[], usage=used
        )
        return data_event(ENCODER.encode(chunk))

    def _response(self, parts: dict[int, _ChatPart], used: Usage) -> bytes:
        choices = [
            ChatChoiceOut(
                index=index,
                message=AssistantMessage(role="assistant", content="".join(part.texts)),
                logprobs=MinerChatLogprobs(content=part.logprobs),
                finish_reason=part.finish,
                token_ids=part.ids,
            )
            for index, part in parts.items()
        ]
        return ENCODER.encode(
            ChatCompletionOut(
                id=self._id,
                created=self._created,
                model=self._call.model,
                choices=choices,
                usage=used,
            )
        )


class CompletionRenderer(_Renderer[_CompletionPart]):
    __slots__ = ("_offsets",)

    def __init__(self, call: TextCall, response_id: str, created: int) -> None:
        super().__init__(call, response_id, created)
        self._offsets: dict[int, int] = {}

    def _new_part(self, index: int) -> _CompletionPart:
        return _CompletionPart(self._offsets.get(index, 0))

    def _chunk(self, index: int, part: _CompletionPart) -> bytes:
        self._offsets[index] = part.offset
        choice = MinerCompletionChoice(
            index=index,
            text="".join(part.texts),
            logprobs=part.logprobs_out(self._call.top_logprobs),
            finish_reason=part.finish,
            token_ids=part.ids,
        )
        chunk = MinerCompletionChunk(
            id=self._id, created=self._created, model=self._call.model, choices=[choice]
        )
        return data_event(ENCODER.encode(chunk))

    def _usage_chunk(self, used: Usage) -> bytes:
        chunk = MinerCompletionChunk(
            id=self._id, created=self._created, model=self._call.model, choices=[], usage=used
        )
        return data_event(ENCODER.encode(chunk))

    def _response(self, parts: dict[int, _CompletionPart], used: Usage) -> bytes:
        choices = [
            CompletionChoiceOut(
                index=index,
                text="".join(part.texts),
                logprobs=part.logprobs_out(self._call.top_logprobs),
                finish_reason=part.finish,
                token_ids=part.ids,
            )
            for index, part in parts.items()
        ]
        return ENCODER.encode(
            CompletionOut(
                id=self._id,
                created=self._created,
                model=self._call.model,
                choices=choices,
                usage=used,
            )
        )


def usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


Renderer = ChatRenderer | CompletionRenderer
