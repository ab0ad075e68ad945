"""Attempt bookkeeping: the candidates, the budget and the record of one request's tries.

``DispatchState`` is owned by the caller and shared by every call it makes for one request (a
non-stream request that fails over mid-way keeps its budget); ``failure()`` turns the attempts
into the error the client gets when all of them failed. ``record_attempt`` ends one attempt:
its outcome into the live stats and onto its span (the dispatcher and an open stream both end
attempts through it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

import msgspec
from opentelemetry import trace
from opentelemetry.context import Context

from core.errors import AppError, NoCapacity, RequestRefused, UpstreamError, UpstreamTimeout
from core.miners.stats import MinerStats, Outcome
from protocol.catalog import Task


class MinerEndpoint(Protocol):
    """What dispatch needs of a candidate (``scoring.MinerRoute`` satisfies it)."""

    @property
    def hotkey(self) -> str: ...

    @property
    def uid(self) -> int: ...

    @property
    def url(self) -> str: ...


class Attempt:
    """One try on one miner."""

    __slots__ = (
        "detail",
        "duration_s",
        "hotkey",
        "outcome",
        "started",
        "status",
        "ttft_s",
        "uid",
        "url",
    )

    def __init__(self, endpoint: MinerEndpoint, started: float) -> None:
        self.hotkey = endpoint.hotkey
        self.uid = endpoint.uid
        self.url = endpoint.url
        self.started = started
        self.outcome: Outcome | None = None
        self.status: int | None = None
        self.ttft_s: float | None = None
        self.duration_s: float | None = None
        self.detail = ""


class StreamFailure(Exception):
    """A committed stream failed (after the first token)."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


class DispatchState:
    """The budget one request shares across its attempts: candidates (in preference order),
    ``max_attempts`` and a monotonic ``deadline``; plus the attempt records."""

    def __init__(
        self,
        task: Task,
        candidates: Iterable[MinerEndpoint],
        *,
        max_attempts: int,
        deadline: float,
        trace_context: Context | None = None,
        retry_after_s: int = 5,
    ) -> None:
        self.task = task
        self._candidates: Iterator[MinerEndpoint] = iter(candidates)
        self.max_attempts = max_attempts
        self.deadline = deadline
        self.trace_context = trace_context
        self.retry_after_s = retry_after_s
        self.attempts: list[Attempt] = []

    def remaining(self, now: float | None = None) -> float:
        return self.deadline - (time.monotonic() if now is None else now)

    def next_candidate(self) -> MinerEndpoint | None:
        if len(self.attempts) >= self.max_attempts or self.remaining() <= 0:
            return None
        return next(self._candidates, None)

    def failure(self) -> AppError:
        """The error for a request whose every attempt failed (or that had none), or that a
        miner refused as invalid."""
        for attempt in self.attempts:
            if attempt.outcome is Outcome.REQUEST_REFUSED:
                reason = f": {attempt.detail}" if attempt.detail else "."
                return RequestRefused(f"The model could not process this request{reason}")
        outcomes = {attempt.outcome for attempt in self.attempts}
        headers = {"Retry-After": str(self.retry_after_s)}
        if not self.attempts:
            return NoCapacity(
                f"No miner is available for {self.task.id} right now; retry shortly.",
                headers=headers,
            )
        if outcomes == {Outcome.RATE_LIMITED}:
            return NoCapacity(
                f"Every miner serving {self.task.id} is at capacity; retry shortly.",
                headers=headers,
            )
        if outcomes <= {Outcome.TIMEOUT}:
            return UpstreamTimeout(
                f"No miner answered {self.task.id} in time ({len(self.attempts)} attempts)."
            )
        return UpstreamError(
            f"Miners failed to serve {self.task.id} ({len(self.attempts)} attempts)."
        )


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86_400 else None


# What a miner answers for a request its model server cannot process (OpenAI's 400; 413 and 422
# from servers that validate sizes and schemas).
REQUEST_ERRORS = frozenset({400, 413, 422})
MAX_REASON = 300


def status_outcome(status: int) -> Outcome:
    if status == 429:
        return Outcome.RATE_LIMITED
    if status >= 500:
        return Outcome.SERVER_ERROR
    if status in REQUEST_ERRORS:
        return Outcome.REQUEST_REFUSED
    return Outcome.REJECTED


class _Detail(msgspec.Struct):
    message: str = ""


class _Refusal(msgspec.Struct):
    error: _Detail


def refusal_reason(body: bytes) -> str:
    """The reason in a miner's OpenAI error envelope, bounded and printable (it is shown to the
    customer, and miners are untrusted); empty when there is none."""
    try:
        message = msgspec.json.decode(body, type=_Refusal).error.message
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return ""
    text = " ".join("".join(c if c.isprintable() else " " for c in message).split())
    return text[:MAX_REASON]


def record_attempt(
    stats: MinerStats,
    state: DispatchState,
    attempt: Attempt,
    outcome: Outcome,
    *,
    units: float = 0.0,
    generation_s: float | None = None,
    retry_after_s: float | None = None,
    span: trace.Span,
) -> None:
    """End ``attempt``: its outcome (and ``units`` of work done in ``generation_s``) into the
    live stats, and its span ended with the outcome."""
    attempt.outcome = outcome
    if attempt.duration_s is None:
        attempt.duration_s = time.monotonic() - attempt.started
    stats.release(
        (state.task.id, attempt.hotkey),
        outcome,
        ttft_s=attempt.ttft_s,
        units=units,
        duration_s=generation_s,
        retry_after_s=retry_after_s,
    )
    if span.is_recording():
        span.set_attribute("sn19.outcome", outcome.value)
        if attempt.ttft_s is not None:
            span.set_attribute("sn19.ttft_s", attempt.ttft_s)
        if attempt.status is not None:
            span.set_attribute("http.response.status_code", attempt.status)
        if outcome is not Outcome.OK:
            span.set_status(trace.StatusCode.ERROR, attempt.detail or outcome.value)
    span.end()
