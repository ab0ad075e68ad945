"""Rendering a miner's completion chunks for the client (and the whole answer).

A pure renderer, like chat's: the chunks were checked by the stream rules
(``core.miners.reader``). The gateway's id and model, logprobs only when asked (``top_logprobs``
trimmed to the requested count, ``text_offset`` computed here), no ``token_ids``, the usage
chunk with ``stream_options.include_usage``.
"""

from __future__ import annotations

from msgspec import UNSET

from gateway.events import ENCODER, encode_event, usage
from protocol.miner import MinerCompletionChoice, MinerCompletionChunk, MinerCompletionLogprobs
from protocol.openai.completions import (
    Completion,
    CompletionChoice,
    CompletionChunk,
    CompletionLogprobs,
    FinishReason,
)
from protocol.records import TextOutput


class CompletionRenderOptions:
    __slots__ = (
        "created",
        "id",
        "include_usage",
        "logprobs",
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
        logprobs: int | None,
        include_usage: bool,
        prompt_tokens: int,
        stream: bool,
    ) -> None:
        self.id = id
        self.created = created
        self.model = model
        self.n = n
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


class CompletionRenderer:
    def __init__(self, options: CompletionRenderOptions) -> None:
        self.options = options
        self._offsets = [0] * options.n
        self._finish: list[FinishReason | None] = [None] * options.n
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
        miner = choice.logprobs
        client: CompletionLogprobs | None = None
        if miner is not None and miner.tokens and self.options.logprobs is not None:
            client = self._client_logprobs(index, miner)
        if choice.text:
            self._offsets[index] += len(choice.text)
        if choice.finish_reason is not None:
            self._finish[index] = choice.finish_reason
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

    def finish(self, completion_tokens: int) -> bytes:
        """The trailing events: the usage chunk with ``stream_options.include_usage``."""
        options = self.options
        if options.stream and options.include_usage:
            return encode_event(
                CompletionChunk(
                    id=options.id,
                    created=options.created,
                    model=options.model,
                    choices=[],
                    usage=usage(options.prompt_tokens, completion_tokens),
                )
            )
        return b""

    def response(self, output: TextOutput) -> bytes:
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
                    for generated in output.choices
                ],
                usage=usage(options.prompt_tokens, output.completion_tokens),
            )
        )
