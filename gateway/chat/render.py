"""Rendering a miner's chat chunks for the client (and the whole answer for non-stream calls).

A pure renderer: the chunks it gets were already checked by the stream rules
(``core.miners.reader``), and the normalized output comes from there. The client sees the
gateway's id and the public model name on every chunk, the ``created`` of
its request, the role on the first delta of each choice, logprobs only when it asked for them
(``top_logprobs`` trimmed to its count), never the miner-only ``token_ids``, and with
``stream_options.include_usage`` a ``usage: null`` on every chunk then one final chunk with
``choices: []`` and the usage. Everything is re-encoded from the protocol Structs.
"""

from __future__ import annotations

from msgspec import UNSET

from gateway.events import ENCODER, encode_event, usage
from protocol.miner import MinerChatChunk
from protocol.openai.chat import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChoiceLogprobs,
    ChunkChoice,
    ChunkDelta,
    FinishReason,
)
from protocol.openai.common import TokenLogprob
from protocol.records import TextOutput


class ChatRenderOptions:
    __slots__ = (
        "created",
        "id",
        "include_usage",
        "logprobs",
        "model",
        "n",
        "prompt_tokens",
        "stream",
        "top_logprobs",
    )

    def __init__(
        self,
        *,
        id: str,
        created: int,
        model: str,
        n: int,
        logprobs: bool,
        top_logprobs: int,
        include_usage: bool,
        prompt_tokens: int,
        stream: bool,
    ) -> None:
        self.id = id
        self.created = created
        self.model = model
        self.n = n
        self.logprobs = logprobs
        self.top_logprobs = top_logprobs
        self.include_usage = include_usage
        self.prompt_tokens = prompt_tokens
        self.stream = stream


def trim_top(entries: list[TokenLogprob], k: int) -> list[TokenLogprob]:
    if all(len(entry.top_logprobs) <= k for entry in entries):
        return entries
    return [
        entry
        if len(entry.top_logprobs) <= k
        else TokenLogprob(
            token=entry.token,
            logprob=entry.logprob,
            bytes=entry.bytes,
            top_logprobs=entry.top_logprobs[:k],
        )
        for entry in entries
    ]


class ChatRenderer:
    def __init__(self, options: ChatRenderOptions) -> None:
        self.options = options
        self._role_sent = [False] * options.n
        # Aggregate mode: the logprobs the client asked for, and the finish reasons.
        self._logprobs: list[list[TokenLogprob]] = [[] for _ in range(options.n)]
        self._finish: list[FinishReason | None] = [None] * options.n

    def feed(self, items: list[MinerChatChunk]) -> bytes:
        """Stream mode: what arrived in one read becomes one chunk per choice (the deltas,
        logprobs and finish of that choice merged, in order), so a miner that flushes many
        small events at once does not cost one client event each."""
        options = self.options
        merged: dict[int, tuple[list[str], list[TokenLogprob], list[FinishReason]]] = {}
        for chunk in items:
            for choice in chunk.choices:
                entries = choice.logprobs.content if choice.logprobs is not None else None
                content = choice.delta.content
                if not options.stream:
                    if options.logprobs and entries:
                        self._logprobs[choice.index].extend(trim_top(entries, options.top_logprobs))
                    if choice.finish_reason is not None:
                        self._finish[choice.index] = choice.finish_reason
                    continue
                parts = merged.get(choice.index)
                if parts is None:
                    parts = merged[choice.index] = ([], [], [])
                if content:
                    parts[0].append(content)
                if entries and options.logprobs:
                    parts[1].extend(entries)
                if choice.finish_reason is not None:
                    parts[2].append(choice.finish_reason)
        if not merged:
            return b""
        return b"".join(
            encode_event(self._chunk([client]))
            for index, parts in merged.items()
            if (client := self._client_choice(index, *parts)) is not None
        )

    def _client_choice(
        self, index: int, texts: list[str], entries: list[TokenLogprob], finish: list[FinishReason]
    ) -> ChunkChoice | None:
        send_role = not self._role_sent[index]
        if not (send_role or texts or entries or finish):
            return None
        self._role_sent[index] = True
        content = "".join(texts)
        return ChunkChoice(
            index=index,
            delta=ChunkDelta(
                role="assistant" if send_role else UNSET,
                content=content if content or send_role else UNSET,
            ),
            logprobs=ChoiceLogprobs(content=trim_top(entries, self.options.top_logprobs))
            if entries
            else None,
            finish_reason=finish[-1] if finish else None,
        )

    def _chunk(self, choices: list[ChunkChoice]) -> ChatCompletionChunk:
        options = self.options
        return ChatCompletionChunk(
            id=options.id,
            created=options.created,
            model=options.model,
            choices=choices,
            usage=None if options.include_usage else UNSET,
        )

    def finish(self, completion_tokens: int) -> bytes:
        """The trailing events: the usage chunk with ``stream_options.include_usage``."""
        options = self.options
        if options.stream and options.include_usage:
            final = ChatCompletionChunk(
                id=options.id,
                created=options.created,
                model=options.model,
                choices=[],
                usage=usage(options.prompt_tokens, completion_tokens),
            )
            return encode_event(final)
        return b""

    def response(self, output: TextOutput) -> bytes:
        options = self.options
        completion = ChatCompletion(
            id=options.id,
            created=options.created,
            model=options.model,
            choices=[
                ChatChoice(
                    index=generated.index,
                    message=AssistantMessage(role="assistant", content=generated.text),
                    logprobs=ChoiceLogprobs(content=self._logprobs[generated.index])
                    if options.logprobs
                    else None,
                    finish_reason=self._finish[generated.index],
                )
                for generated in output.choices
            ],
            usage=usage(options.prompt_tokens, output.completion_tokens),
        )
        return ENCODER.encode(completion)
