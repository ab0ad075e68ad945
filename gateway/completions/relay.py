"""Rewriting a miner's completion chunks for the client (and aggregating them).

Same rules as chat: the gateway's id and model, logprobs only when asked (``top_logprobs``
trimmed to the requested count, ``text_offset`` computed here), no ``token_ids``, the usage
chunk with ``stream_options.include_usage``.
"""

from __future__ import annotations

from msgspec import UNSET

from gateway.relay import ENCODER, RelayError, encode_event, usage
from protocol.miner import MinerCompletionChoice, MinerCompletionChunk, MinerCompletionLogprobs
from protocol.openai.completions import (
    Completion,
    CompletionChoice,
    CompletionChunk,
    CompletionLogprobs,
    FinishReason,
)
from protocol.records import GeneratedChoice, TextOutput


class CompletionRelayOptions:
    __slots__ = (
        "created",
        "id",
        "include_usage",
        "logprobs",
        "max_tokens",
        "model",
        "n",
        "prompt_tokens",
        "stream",
    )

    def __init__(
        self,
        *,
        id: str,
        created: int,
        model: str,
        n: int,
        max_tokens: int,
        logprobs: int | None,
        include_usage: bool,
        prompt_tokens: int,
        stream: bool,
    ) -> None:
        self.id = id
        self.created = created
        self.model = model
        self.n = n
        self.max_tokens = max_tokens
        self.logprobs = logprobs
        self.include_usage = include_usage
        self.prompt_tokens = prompt_tokens
        self.stream = stream


def _top(entry: dict[str, float] | None, k: int) -> dict[str, float]:
    if not entry:
        return {}
    if len(entry) <= k:
        return entry
    return dict(sorted(entry.items(), key=lambda item: item[1], reverse=True)[:k])


class CompletionRelay:
    def __init__(self, options: CompletionRelayOptions) -> None:
        self.options = options
        self.choices = [
            GeneratedChoice(index=i, token_ids=[], logprobs=[]) for i in range(options.n)
        ]
        self.output = TextOutput(choices=self.choices)
        self.completion_tokens = 0
        self._texts: list[list[str]] = [[] for _ in range(options.n)]
        self._offsets = [0] * options.n
        self._finish: list[FinishReason | None] = [None] * options.n
        self._unfinished = options.n
        self._logprobs = [CompletionLogprobs([], [], [], []) for _ in range(options.n)]

    def _client_logprobs(self, index: int, miner: MinerCompletionLogprobs) -> CompletionLogprobs:
        k = self.options.logprobs or 0
        offsets: list[int] = []
        offset = self._offsets[index]
        for token in miner.tokens:
            offsets.append(offset)
            offset += len(token)
        tops = miner.top_logprobs or [None] * len(miner.tokens)
        return CompletionLogprobs(
            tokens=miner.tokens,
            token_logprobs=miner.token_logprobs,
            top_logprobs=[_top(entry, k) for entry in tops],
            text_offset=offsets,
        )

    def _take(self, choice: MinerCompletionChoice) -> CompletionLogprobs | None:
        index = choice.index
        if index >= self.options.n:
            raise RelayError(f"choice index {index} out of range")
        generated = self.choices[index]
        if generated.finish_reason is not None:
            raise RelayError(f"output for choice {index} after it finished")
        token_ids = choice.token_ids or []
        miner = choice.logprobs
        count = len(miner.tokens) if miner is not None else 0
        if len(token_ids) != count or (miner is not None and len(miner.token_logprobs) != count):
            raise RelayError("token ids and logprobs are not aligned")
        client: CompletionLogprobs | None = None
        if miner is not None and count:
            values = miner.token_logprobs
            if any(value is None for value in values):
                raise RelayError("a generated token has no logprob")
            generated.token_ids.extend(token_ids)
            generated.logprobs.extend(value for value in values if value is not None)
            self.completion_tokens += count
            if len(generated.token_ids) > self.options.max_tokens:
                raise RelayError("the miner sent more tokens than max_tokens")
            if self.options.logprobs is not None:
                client = self._client_logprobs(index, miner)
        if choice.text:
            self._texts[index].append(choice.text)
            self._offsets[index] += len(choice.text)
        if choice.finish_reason is not None:
            generated.finish_reason = choice.finish_reason
            self._finish[index] = choice.finish_reason
            self._unfinished -= 1
        return client

    def feed(self, items: list[MinerCompletionChunk]) -> bytes:
        """Stream mode: what arrived in one read becomes one chunk per choice."""
        options = self.options
        merged: dict[int, tuple[list[str], list[CompletionLogprobs], list[FinishReason]]] = {}
        for chunk in items:
            for choice in chunk.choices:
                client = self._take(choice)
                if not options.stream:
                    if client is not None:
                        self._extend(self._logprobs[choice.index], client)
                    continue
                parts = merged.get(choice.index)
                if parts is None:
                    parts = merged[choice.index] = ([], [], [])
                if choice.text:
                    parts[0].append(choice.text)
                if client is not None:
                    parts[1].append(client)
                if choice.finish_reason is not None:
                    parts[2].append(choice.finish_reason)
        out: list[bytes] = []
        for index, (texts, logprobs, finish) in merged.items():
            if not (texts or logprobs or finish):
                continue
            combined: CompletionLogprobs | None = None
            if logprobs:
                combined = logprobs[0]
                for more in logprobs[1:]:
                    self._extend(combined, more)
            choice_out = CompletionChoice(
                index=index,
                text="".join(texts),
                logprobs=combined,
                finish_reason=finish[-1] if finish else None,
            )
            out.append(
                encode_event(
                    CompletionChunk(
                        id=options.id,
                        created=options.created,
                        model=options.model,
                        choices=[choice_out],
                        usage=None if options.include_usage else UNSET,
                    )
                )
            )
        return b"".join(out)

    @staticmethod
    def _extend(total: CompletionLogprobs, client: CompletionLogprobs) -> None:
        total.tokens.extend(client.tokens)
        total.token_logprobs.extend(client.token_logprobs)
        if total.top_logprobs is not None and client.top_logprobs is not None:
            total.top_logprobs.extend(client.top_logprobs)
        total.text_offset.extend(client.text_offset)

    def finish(self, done: bool) -> bytes:
        del done
        if self._unfinished > 0:
            raise RelayError("the stream ended before every choice finished")
        for index, generated in enumerate(self.choices):
            generated.text = "".join(self._texts[index])
        if self.options.stream and self.options.include_usage:
            return encode_event(
                CompletionChunk(
                    id=self.options.id,
                    created=self.options.created,
                    model=self.options.model,
                    choices=[],
                    usage=usage(self.options.prompt_tokens, self.completion_tokens),
                )
            )
        return b""

    def response(self) -> bytes:
        options = self.options
        return ENCODER.encode(
            Completion(
                id=options.id,
                created=options.created,
                model=options.model,
                choices=[
                    CompletionChoice(
                        index=generated.index,
                        text=generated.text,
                        logprobs=self._logprobs[generated.index]
                        if options.logprobs is not None
                        else None,
                        finish_reason=self._finish[generated.index],
                    )
                    for generated in self.choices
                ],
                usage=usage(options.prompt_tokens, self.completion_tokens),
            )
        )
