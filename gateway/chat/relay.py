"""Rewriting a miner's chat chunks for the client (and aggregating them for non-stream calls).

The client sees the gateway's id and the public model name on every chunk, the ``created`` of
its request, the role on the first delta of each choice, logprobs only when it asked for them
(``top_logprobs`` trimmed to its count), never the miner-only ``token_ids``, and with
``stream_options.include_usage`` a ``usage: null`` on every chunk then one final chunk with
``choices: []`` and the usage. Everything is re-encoded from the protocol Structs.
"""

from __future__ import annotations

from msgspec import UNSET

from gateway.relay import ENCODER, RelayError, encode_event, usage
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
from protocol.records import GeneratedChoice, TextOutput


class ChatRelayOptions:
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
        "top_logprobs",
    )

    def __init__(
        self,
        *,
        id: str,
        created: int,
        model: str,
        n: int,
        max_tokens: int,
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
        self.max_tokens = max_tokens
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


class ChatRelay:
    def __init__(self, options: ChatRelayOptions) -> None:
        self.options = options
        self.choices = [
            GeneratedChoice(index=i, token_ids=[], logprobs=[]) for i in range(options.n)
        ]
        self.output = TextOutput(choices=self.choices)
        self.completion_tokens = 0
        self._texts: list[list[str]] = [[] for _ in range(options.n)]
        self._role_sent = [False] * options.n
        self._logprobs: list[list[TokenLogprob]] = [[] for _ in range(options.n)]
        self._finish: list[FinishReason | None] = [None] * options.n
        self._unfinished = options.n

    def _take(
        self,
        choice_index: int,
        token_ids: list[int] | None,
        entries: list[TokenLogprob] | None,
        content: str | None,
        finish_reason: FinishReason | None,
    ) -> None:
        if choice_index >= self.options.n:
            raise RelayError(f"choice index {choice_index} out of range")
        generated = self.choices[choice_index]
        if generated.finish_reason is not None:
            raise RelayError(f"output for choice {choice_index} after it finished")
        count = len(token_ids) if token_ids else 0
        if count != (len(entries) if entries else 0):
            raise RelayError("token ids and logprobs are not aligned")
        if count:
            assert token_ids is not None and entries is not None
            generated.token_ids.extend(token_ids)
            generated.logprobs.extend(entry.logprob for entry in entries)
            self.completion_tokens += count
            if len(generated.token_ids) > self.options.max_tokens:
                raise RelayError("the miner sent more tokens than max_tokens")
        if content:
            self._texts[choice_index].append(content)
        if finish_reason is not None:
            generated.finish_reason = finish_reason
            self._finish[choice_index] = finish_reason
            self._unfinished -= 1

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
                self._take(choice.index, choice.token_ids, entries, content, choice.finish_reason)
                if not options.stream:
                    if options.logprobs and entries:
                        self._logprobs[choice.index].extend(trim_top(entries, options.top_logprobs))
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

    def finish(self, done: bool) -> bytes:
        del done  # a stream without [DONE] is complete when every choice finished
        if self._unfinished > 0:
            raise RelayError("the stream ended before every choice finished")
        for index, generated in enumerate(self.choices):
            generated.text = "".join(self._texts[index])
        if self.options.stream and self.options.include_usage:
            final = ChatCompletionChunk(
                id=self.options.id,
                created=self.options.created,
                model=self.options.model,
                choices=[],
                usage=usage(self.options.prompt_tokens, self.completion_tokens),
            )
            return encode_event(final)
        return b""

    def response(self) -> bytes:
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
                for generated in self.choices
            ],
            usage=usage(options.prompt_tokens, self.completion_tokens),
        )
        return ENCODER.encode(completion)
