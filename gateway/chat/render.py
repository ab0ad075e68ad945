"""Rendering a miner's chat chunks for the client (and the whole answer for non-stream calls).

A pure renderer: the chunks it gets were already checked by the stream rules
(``core.miners.reader``), and the normalized output comes from there. The client sees the
gateway's id and the public model name on every chunk, the ``created`` of
its request, the role on the first delta of each choice, logprobs only when it asked for them
(``top_logprobs`` trimmed to its count), never the miner-only ``token_ids``, and with
``stream_options.include_usage`` a ``usage: null`` on every chunk then one final chunk with
``choices: []`` and the usage. Everything is re-encoded from the protocol Structs.

With ``tool_format`` set (the request has tools and ``tool_choice`` is not ``none``), tool calls
are read out of the completion text with that format (``protocol.tool_calls``): streamed, each
call is one ``delta.tool_calls`` entry (index, id, type, name and the whole arguments) sent as
soon as its text is complete, content outside calls flows as ``delta.content``; aggregated,
``message.tool_calls`` with ``content`` null when nothing else was said. A choice that stopped
after making calls finishes with ``tool_calls``.
"""

from __future__ import annotations

from msgspec import UNSET

from gateway.events import ENCODER, encode_event, usage
from gateway.ids import object_id
from protocol.miner import MinerChatChunk
from protocol.openai.chat import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChoiceLogprobs,
    ChunkChoice,
    ChunkDelta,
    ChunkFunction,
    ChunkToolCall,
    FinishReason,
    FunctionCall,
    ToolCall,
)
from protocol.openai.common import TokenLogprob
from protocol.records import TextOutput
from protocol.tool_calls import Call, CallSplitter, ToolFormat, split_calls


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
        "tool_format",
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
        tool_format: ToolFormat | None = None,
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
        self.tool_format = tool_format


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


def tool_call(call: Call) -> ToolCall:
    return ToolCall(
        id=object_id("call_"), function=FunctionCall(name=call.name, arguments=call.arguments)
    )


class ChatRenderer:
    def __init__(self, options: ChatRenderOptions) -> None:
        self.options = options
        fmt = options.tool_format
        self._splitters = [CallSplitter(fmt) for _ in range(options.n)] if fmt else None
        self._calls_sent = [0] * options.n
        self._role_sent = [False] * options.n
        # Aggregate mode: the logprobs the client asked for, and the finish reasons.
        self._logprobs: list[list[TokenLogprob]] = [[] for _ in range(options.n)]
        self._finish: list[FinishReason | None] = [None] * options.n

    def feed(self, items: list[MinerChatChunk]) -> bytes:
        """Stream mode: what arrived in one read becomes one chunk per choice (the deltas,
        logprobs and finish of that choice merged, in order), so a miner that flushes many
        small events at once does not cost one client event each."""
        options = self.options
        splitters = self._splitters
        merged: dict[int, _Parts] = {}
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
                    parts = merged[choice.index] = _Parts()
                if splitters is not None:
                    splitter = splitters[choice.index]
                    if content:
                        content, calls = splitter.feed(content)
                        parts.calls.extend(calls)
                    if choice.finish_reason is not None:
                        tail, calls = splitter.finish()
                        content = (content or "") + tail
                        parts.calls.extend(calls)
                if content:
                    parts.texts.append(content)
                if entries and options.logprobs:
                    parts.entries.extend(entries)
                if choice.finish_reason is not None:
                    parts.finish.append(choice.finish_reason)
        if not merged:
            return b""
        return b"".join(
            encode_event(self._chunk([client]))
            for index, parts in merged.items()
            if (client := self._client_choice(index, parts)) is not None
        )

    def _tool_deltas(self, index: int, calls: list[Call]) -> list[ChunkToolCall]:
        first = self._calls_sent[index]
        self._calls_sent[index] += len(calls)
        return [
            ChunkToolCall(
                index=first + position,
                id=object_id("call_"),
                type="function",
                function=ChunkFunction(name=call.name, arguments=call.arguments),
            )
            for position, call in enumerate(calls)
        ]

    def _client_choice(self, index: int, parts: _Parts) -> ChunkChoice | None:
        send_role = not self._role_sent[index]
        if not (send_role or parts.texts or parts.entries or parts.finish or parts.calls):
            return None
        self._role_sent[index] = True
        content = "".join(parts.texts)
        finish: FinishReason | None = parts.finish[-1] if parts.finish else None
        calls = self._tool_deltas(index, parts.calls) if parts.calls else UNSET
        if finish == "stop" and self._calls_sent[index]:
            finish = "tool_calls"
        return ChunkChoice(
            index=index,
            delta=ChunkDelta(
                role="assistant" if send_role else UNSET,
                content=content if content or send_role else UNSET,
                tool_calls=calls,
            ),
            logprobs=ChoiceLogprobs(content=trim_top(parts.entries, self.options.top_logprobs))
            if parts.entries
            else None,
            finish_reason=finish,
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

    def _choice(self, index: int, text: str) -> ChatChoice:
        options = self.options
        finish = self._finish[index]
        message = AssistantMessage(role="assistant", content=text)
        if options.tool_format is not None:
            content, calls = split_calls(text, options.tool_format)
            if calls:
                message = AssistantMessage(
                    role="assistant",
                    content=content or None,
                    tool_calls=[tool_call(call) for call in calls],
                )
                if finish == "stop":
                    finish = "tool_calls"
        return ChatChoice(
            index=index,
            message=message,
            logprobs=ChoiceLogprobs(content=self._logprobs[index]) if options.logprobs else None,
            finish_reason=finish,
        )

    def response(self, output: TextOutput) -> bytes:
        options = self.options
        completion = ChatCompletion(
            id=options.id,
            created=options.created,
            model=options.model,
            choices=[self._choice(generated.index, generated.text) for generated in output.choices],
            usage=usage(options.prompt_tokens, output.completion_tokens),
        )
        return ENCODER.encode(completion)


class _Parts:
    """What one read brought for one choice (merged into one client chunk)."""

    __slots__ = ("calls", "entries", "finish", "texts")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.entries: list[TokenLogprob] = []
        self.finish: list[FinishReason] = []
        self.calls: list[Call] = []
