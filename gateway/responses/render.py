"""Rendering a miner's chat chunks as the Responses API (``/v1/responses``).

A pure renderer over the chunks the stream rules already checked (``core.miners.reader``),
like ``gateway.chat.render``. Output items: the answer's text is one ``message`` item with one
``output_text`` part; with tools, each call read from the completion text (the task's format,
``protocol.tool_calls``) is a ``function_call`` item, in the order the text has them (text
after a call opens a new message item). An answer that is empty and made no calls is one empty
message, so ``output_text`` is always defined.

Streamed, the events are OpenAI's, each ``event: <type>`` + ``data: <json>`` with a
``sequence_number``: ``response.created``, ``response.in_progress``, then per item
``response.output_item.added``; text as ``response.content_part.added``,
``response.output_text.delta`` …, ``response.output_text.done``,
``response.content_part.done``; a call as ``response.function_call_arguments.delta`` (the
whole arguments once the call's text is complete) and ``response.function_call_arguments.done``;
each item ends with ``response.output_item.done``; the stream ends with ``response.completed``
(or ``response.incomplete`` when ``max_output_tokens`` cut the answer) carrying the whole
response and its ``usage``, and no ``[DONE]``. A failure after the first event ends the stream
with an ``error`` event (``code`` ``upstream_error`` or ``upstream_timeout``).
"""

from __future__ import annotations

import time

import msgspec

from core.errors import AppError
from core.miners import Outcome
from gateway.chat.render import ChatRenderOptions
from gateway.events import ENCODER
from gateway.ids import object_id
from gateway.responses.convert import Mapped
from gateway.text_serving import StreamFraming
from protocol.miner import MinerChatChunk
from protocol.openai.responses import (
    ArgumentsDelta,
    ArgumentsDone,
    ContentPartAdded,
    ContentPartDone,
    ErrorEvent,
    FunctionCallOutput,
    IncompleteDetails,
    OutputItem,
    OutputItemAdded,
    OutputItemDone,
    OutputMessage,
    OutputTextContent,
    OutputTextDelta,
    OutputTextDone,
    Response,
    ResponseCompleted,
    ResponseEvent,
    ResponseIncomplete,
    ResponseInProgress,
    ResponseUsage,
    StreamEvent,
)
from protocol.records import TextOutput
from protocol.tool_calls import Call, CallSplitter, split_calls


def encode(event: StreamEvent) -> bytes:
    tag = type(event).__struct_config__.tag
    return b"event: " + str(tag).encode() + b"\ndata: " + ENCODER.encode(event) + b"\n\n"


def error_event(error: AppError) -> bytes:
    """The in-band error of a stream that had to start before the miner answered."""
    return encode(ErrorEvent(sequence_number=0, message=error.message, code=error.code))


def failure_event(outcome: Outcome, message: str) -> bytes:
    """The in-band error of a stream whose miner failed after its first token."""
    code = "upstream_timeout" if outcome is Outcome.TIMEOUT else "upstream_error"
    return encode(ErrorEvent(sequence_number=0, message=f"The miner failed: {message}.", code=code))


RESPONSES_SSE = StreamFraming(done=b"", error_event=error_event, failure_event=failure_event)


def usage(prompt_tokens: int, completion_tokens: int) -> ResponseUsage:
    return ResponseUsage(
        input_tokens=prompt_tokens,
        output_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )


def message_item(text: str, status: str = "completed", item_id: str | None = None) -> OutputMessage:
    return OutputMessage(
        id=item_id or object_id("msg_"),
        status=status,  # type: ignore[arg-type]
        content=[OutputTextContent(text=text)] if status == "completed" else [],
    )


def call_item(call: Call, status: str = "completed") -> FunctionCallOutput:
    return FunctionCallOutput(
        id=object_id("fc_"),
        call_id=object_id("call_"),
        name=call.name,
        arguments=call.arguments if status == "completed" else "",
        status=status,  # type: ignore[arg-type]
    )


class ResponsesRenderer:
    def __init__(self, options: ChatRenderOptions, *, mapped: Mapped) -> None:
        self.options = options
        self.mapped = mapped
        self.created_at = int(time.time())
        fmt = options.tool_format
        self._splitter = CallSplitter(fmt) if fmt else None
        self._sequence = 0
        self._started = False
        self._finish: str | None = None
        # Stream mode: the items so far, and the open message's id and text.
        self._items: list[OutputItem] = []
        self._message_id: str | None = None
        self._text: list[str] = []

    # --- the response object ---

    def _response(
        self, status: str, output: list[OutputItem], completion_tokens: int | None
    ) -> Response:
        options, mapped = self.options, self.mapped
        chat = mapped.chat
        incomplete = status == "incomplete"
        return Response(
            id=options.id,
            created_at=self.created_at,
            model=options.model,
            status=status,  # type: ignore[arg-type]
            output=output,
            tools=mapped.tools,
            tool_choice=mapped.tool_choice,
            parallel_tool_calls=chat.parallel_tool_calls is not False,
            text=mapped.text,
            usage=usage(options.prompt_tokens, completion_tokens)
            if completion_tokens is not None
            else None,
            instructions=mapped.instructions,
            max_output_tokens=chat.max_tokens,
            temperature=chat.temperature,
            top_p=chat.top_p,
            incomplete_details=IncompleteDetails(reason="max_output_tokens")
            if incomplete
            else None,
            metadata=mapped.metadata or {},
            user=chat.user,
        )

    def _status(self) -> str:
        return "incomplete" if self._finish == "length" else "completed"

    # --- aggregate mode ---

    def response(self, output: TextOutput) -> bytes:
        choice = output.choices[0]
        self._finish = choice.finish_reason
        items: list[OutputItem] = []
        if self.options.tool_format is not None:
            content, calls = split_calls(choice.text, self.options.tool_format)
        else:
            content, calls = choice.text, []
        if content or not calls:
            items.append(message_item(content, "completed"))
        items.extend(call_item(call) for call in calls)
        return ENCODER.encode(self._response(self._status(), items, output.completion_tokens))

    # --- stream mode ---

    def _event(self, cls: type[msgspec.Struct], **fields: object) -> bytes:
        event = cls(sequence_number=self._sequence, **fields)
        self._sequence += 1
        return encode(event)  # type: ignore[arg-type]

    def _start(self) -> list[bytes]:
        self._started = True
        state = self._response("in_progress", [], None)
        return [
            self._event(ResponseEvent, response=state),
            self._event(ResponseInProgress, response=state),
        ]

    def _open_message(self, out: list[bytes]) -> str:
        if self._message_id is None:
            item = message_item("", "in_progress")
            self._message_id = item.id
            index = len(self._items)
            out.append(self._event(OutputItemAdded, output_index=index, item=item))
            out.append(
                self._event(
                    ContentPartAdded,
                    item_id=item.id,
                    output_index=index,
                    content_index=0,
                    part=OutputTextContent(text=""),
                )
            )
        return self._message_id

    def _close_message(self, out: list[bytes]) -> None:
        item_id = self._message_id
        if item_id is None:
            return
        text = "".join(self._text)
        index = len(self._items)
        part = OutputTextContent(text=text)
        out.append(
            self._event(
                OutputTextDone, item_id=item_id, output_index=index, content_index=0, text=text
            )
        )
        out.append(
            self._event(
                ContentPartDone, item_id=item_id, output_index=index, content_index=0, part=part
            )
        )
        item = message_item(text, "completed", item_id)
        out.append(self._event(OutputItemDone, output_index=index, item=item))
        self._items.append(item)
        self._message_id = None
        self._text = []

    def _text_delta(self, text: str, out: list[bytes]) -> None:
        item_id = self._open_message(out)
        self._text.append(text)
        out.append(
            self._event(
                OutputTextDelta,
                item_id=item_id,
                output_index=len(self._items),
                content_index=0,
                delta=text,
            )
        )

    def _call(self, call: Call, out: list[bytes]) -> None:
        self._close_message(out)
        index = len(self._items)
        done = call_item(call)
        started = FunctionCallOutput(
            id=done.id, call_id=done.call_id, name=done.name, arguments="", status="in_progress"
        )
        out.append(self._event(OutputItemAdded, output_index=index, item=started))
        out.append(
            self._event(ArgumentsDelta, item_id=done.id, output_index=index, delta=call.arguments)
        )
        out.append(
            self._event(
                ArgumentsDone,
                item_id=done.id,
                output_index=index,
                name=call.name,
                arguments=call.arguments,
            )
        )
        out.append(self._event(OutputItemDone, output_index=index, item=done))
        self._items.append(done)

    def _pieces(self, content: str | None, finished: bool) -> tuple[str, list[Call]]:
        splitter = self._splitter
        if splitter is None:
            return content or "", []
        text, calls = splitter.feed(content) if content else ("", [])
        if finished:
            tail, more = splitter.finish()
            return text + tail, calls + more
        return text, calls

    def feed(self, items: list[MinerChatChunk]) -> bytes:
        if not self.options.stream:
            for chunk in items:
                for choice in chunk.choices:
                    if choice.finish_reason is not None:
                        self._finish = choice.finish_reason
            return b""
        out = [] if self._started else self._start()
        for chunk in items:
            for choice in chunk.choices:
                finished = choice.finish_reason is not None
                text, calls = self._pieces(choice.delta.content, finished)
                # The text before the calls (a splitter holds back what may start a call).
                if text:
                    self._text_delta(text, out)
                for call in calls:
                    self._call(call, out)
                if finished:
                    self._finish = choice.finish_reason
        return b"".join(out)

    def finish(self, completion_tokens: int) -> bytes:
        out: list[bytes] = [] if self._started else self._start()
        if not self._items and self._message_id is None:
            self._open_message(out)
        self._close_message(out)
        status = self._status()
        final = self._response(status, self._items, completion_tokens)
        cls = ResponseIncomplete if status == "incomplete" else ResponseCompleted
        out.append(self._event(cls, response=final))
        return b"".join(out)
