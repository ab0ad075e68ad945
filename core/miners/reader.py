"""Reading a miner's text stream: the one place that enforces the stream rules and deadlines.

Organic (the gateway's relays) and synthetic (the scoring process's sender) answers are read by
the same code, so a miner is judged identically whoever asked.

Deadlines, per attempt (the task's ``timeouts``):

- first token: ``read_first`` (called by ``Dispatcher.open_stream``) reads until an event
  carries output, within ``first_token_s`` and the request's deadline; past it the attempt
  times out and the dispatcher fails over;
- idle: after the first token, each read waits at most ``idle_s``;
- total: nothing is read past the request's deadline (``DispatchState.deadline``).

Rules (``TextRules``), on every chunk: choice indexes within ``n``; token ids aligned with
logprobs, every generated token with a logprob; no output for a choice after it finished; no
more than ``max_tokens`` tokens per choice; every choice finished when the stream ends; and a
choice that stopped on its own has the shape its request requires (``core.miners.structured``:
JSON under a schema, the tool calls ``tool_choice`` asks for). Any violation or missed deadline
raises ``StreamFailure`` (its ``outcome`` says which): the one failure type of a committed
stream.

``StreamReader`` reads one opened stream to its end under these rules and records how it ended
on the attempt (``OpenStream.finish``) exactly once, in ``end()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, cast

import msgspec

from core.miners.attempts import StreamFailure
from core.miners.client import MinerStream, MinerTimeout
from core.miners.stats import Outcome
from core.miners.streams import OpenStream
from core.miners.structured import Expectation
from protocol.miner import MinerChatChunk, MinerCompletionChunk
from protocol.records import GeneratedChoice, TextOutput

T = TypeVar("T")
# A miner text chunk: what ``StreamReader`` reads.
C = TypeVar("C", MinerChatChunk, MinerCompletionChunk)

CHAT_CHUNK = msgspec.json.Decoder(MinerChatChunk)
COMPLETION_CHUNK = msgspec.json.Decoder(MinerCompletionChunk)

TOTAL_TIME = "the request exceeded its total time"


def chat_first_token(chunk: MinerChatChunk) -> bool:
    return any(
        choice.token_ids or choice.finish_reason is not None or choice.delta.content
        for choice in chunk.choices
    )


def completion_first_token(chunk: MinerCompletionChunk) -> bool:
    return any(
        choice.token_ids or choice.finish_reason is not None or choice.text
        for choice in chunk.choices
    )


def _broken(message: str) -> StreamFailure:
    return StreamFailure(Outcome.BAD_RESPONSE, message)


class TextRules:
    """The stream rules over the chat or completion chunks of one miner stream (``n``
    choices), accumulating the normalized ``output`` as they pass."""

    __slots__ = (
        "_texts",
        "_unfinished",
        "completion_tokens",
        "expect",
        "max_tokens",
        "n",
        "output",
    )

    def __init__(self, *, n: int, max_tokens: int, expect: Expectation | None = None) -> None:
        self.n = n
        self.max_tokens = max_tokens
        self.expect = expect
        self.output = TextOutput(choices=[GeneratedChoice(index=i) for i in range(n)])
        self.completion_tokens = 0
        self._texts: list[list[str]] = [[] for _ in range(n)]
        self._unfinished = n

    def _take(
        self,
        index: int,
        token_ids: list[int] | None,
        logprobs: list[float | None],
        text: str | None,
        finish_reason: str | None,
    ) -> None:
        if index >= self.n:
            raise _broken(f"choice index {index} out of range")
        generated = self.output.choices[index]
        if generated.finish_reason is not None:
            raise _broken(f"output for choice {index} after it finished")
        ids = token_ids or ()
        if len(ids) != len(logprobs):
            raise _broken("token ids and logprobs are not aligned")
        if ids:
            if None in logprobs:
                raise _broken("a generated token has no logprob")
            generated.token_ids.extend(ids)
            generated.logprobs.extend(cast("list[float]", logprobs))
            self.completion_tokens += len(ids)
            if len(generated.token_ids) > self.max_tokens:
                raise _broken("the miner sent more tokens than max_tokens")
        if text:
            self._texts[index].append(text)
        if finish_reason is not None:
            generated.finish_reason = finish_reason
            self._unfinished -= 1

    def check(self, items: Sequence[MinerChatChunk | MinerCompletionChunk]) -> None:
        """Apply the rules to the next chunks (in order); raise ``StreamFailure``."""
        for chunk in items:
            if isinstance(chunk, MinerChatChunk):
                for chat in chunk.choices:
                    entries = chat.logprobs.content if chat.logprobs is not None else None
                    values: list[float | None] = [e.logprob for e in entries or ()]
                    self._take(
                        chat.index, chat.token_ids, values, chat.delta.content, chat.finish_reason
                    )
            else:
                for choice in chunk.choices:
                    miner = choice.logprobs
                    if miner is not None and len(miner.tokens) != len(miner.token_logprobs):
                        raise _broken("token ids and logprobs are not aligned")
                    values = list(miner.token_logprobs) if miner is not None else []
                    self._take(
                        choice.index, choice.token_ids, values, choice.text, choice.finish_reason
                    )

    def finish(self) -> TextOutput:
        """The stream ended: every choice must have finished."""
        if self._unfinished > 0:
            raise _broken("the stream ended before every choice finished")
        for index, generated in enumerate(self.output.choices):
            generated.text = "".join(self._texts[index])
            if self.expect is not None and generated.finish_reason == "stop":
                self.expect.check(generated.text)
        return self.output


async def read_first(
    opened: OpenStream[T], stream: MinerStream, ready: Callable[[T], bool], until: float
) -> bool:
    """Read until an item is ``ready`` (the first token) before the monotonic ``until``;
    False when the stream ended first. The items read are kept in ``opened.first``."""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            raise MinerTimeout("no first token in time")
        events = await stream.next_events(left)
        if not events:
            return False
        items = opened.take(events)
        opened.first.extend(items)
        if any(ready(item) for item in items):
            opened.attempt.ttft_s = time.monotonic() - opened.attempt.started
            return True
        if opened.done:
            return False


class StreamReader(Generic[C]):
    """One opened miner stream read to its end under ``rules`` and the idle/total deadlines.

    ``first()`` gives the items read before the commit, ``next()`` the following reads (``[]``
    at the end); both check them. ``finish()`` checks the end; ``end()`` (always, in a
    ``finally``) records how the attempt ended: ``OK`` after ``finish()``, the failure's
    outcome after a ``StreamFailure``, else ``CANCELLED`` (the reader was abandoned).
    ``waited`` is the time spent waiting for the miner."""

    __slots__ = ("_idle_s", "opened", "outcome", "rules", "waited")

    def __init__(self, opened: OpenStream[C], rules: TextRules, *, idle_s: float) -> None:
        self.opened: OpenStream[C] = opened
        self.rules = rules
        self._idle_s = idle_s
        self.outcome = Outcome.CANCELLED
        self.waited = 0.0

    @property
    def completion_tokens(self) -> int:
        return self.rules.completion_tokens

    def _failed(self, failure: StreamFailure) -> StreamFailure:
        self.outcome = failure.outcome
        self.opened.attempt.detail = failure.message
        return failure

    def _check(self, items: list[C]) -> list[C]:
        try:
            self.rules.check(items)
        except StreamFailure as failure:
            raise self._failed(failure) from None
        return items

    def first(self) -> list[C]:
        return self._check(self.opened.first)

    async def next(self) -> list[C]:
        opened: OpenStream[C] = self.opened
        left = opened.state.remaining()
        if left <= 0:
            raise self._failed(StreamFailure(Outcome.TIMEOUT, TOTAL_TIME))
        started = time.monotonic()
        try:
            items = await opened.next_batch(min(self._idle_s, left))
        except StreamFailure as failure:
            raise self._failed(failure) from None
        finally:
            self.waited += time.monotonic() - started
        return self._check(items)

    def finish(self) -> TextOutput:
        try:
            output = self.rules.finish()
        except StreamFailure as failure:
            raise self._failed(failure) from None
        self.outcome = Outcome.OK
        return output

    async def read_all(self) -> TextOutput:
        """The whole stream (synthetic requests, non-stream clients)."""
        self.first()
        while await self.next():
            pass
        return self.finish()

    def end(self) -> None:
        self.opened.finish(self.outcome, units=self.rules.completion_tokens)
