"""The synthetic sender: one claimed slot of the schedule → one request to exactly that contender.

``MinerSender.send(period, contender, request)`` (the ``scoring.synthetic.claims.SyntheticSender``):

1. builds the miner request from the public ``SyntheticRequest`` with the gateway's own mapping
   (``core.miners.requests``; the seed the factory drew from this validator's range is kept);
2. waits, at most ``scoring.synthetic_defer_s``, until the miner has fewer requests in flight
   than the concurrency it announced (``MinerStats``) and no customer's request waits for the
   task on any gateway (``core.miners.OrganicWaiting``), so a synthetic request never queues in
   front of organic traffic; a slot that finds no room in time is skipped, not counted;
3. dispatches through ``core.miners.Dispatcher`` (the gateway's code: btauth/1 signing, the
   task's timeouts, live stats) with the contender as the only candidate and one attempt;
4. reads the whole stream with the gateway's own reader, rules and deadlines
   (``core.miners.StreamReader``), or checks the JSON answer (``check_vectors``);
5. records the outcome on the contender's counters (``organic=False``; volume in task units:
   completion tokens, images × steps, input tokens; a request the miner refused as invalid
   counts as ``REJECTED``, since a synthetic request is valid by construction) and, on
   success, enqueues a check job (``core.checks.make_job(..., organic=False)``) with the
   miner's receipt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from core.checks import CheckQueue, JobKind, JobTimings, make_job
from core.errors import AppError
from core.miners import (
    Attempt,
    Dispatcher,
    DispatchState,
    MinerStats,
    Outcome,
    StreamFailure,
    StreamReader,
    TextRules,
)
from core.miners.reader import (
    CHAT_CHUNK,
    COMPLETION_CHUNK,
    chat_first_token,
    completion_first_token,
)
from core.miners.requests import (
    TextCall,
    chat_call,
    check_vectors,
    completion_call,
    count_embedding_inputs,
    miner_embeddings,
    miner_generation,
    plan_image,
)
from core.miners.waiting import OrganicWaiting
from core.tokens import TokenCounter
from protocol.catalog import Catalog, Task
from protocol.miner import (
    MAX_IMAGE_B64,
    MinerChatRequest,
    MinerEmbeddingList,
    MinerImagesResponse,
)
from protocol.openai.chat import ChatCompletionRequest
from protocol.openai.completions import CompletionRequest
from protocol.openai.embeddings import EmbeddingRequest
from protocol.openai.images import ImageGenerationRequest
from protocol.openai.shapes import ShapeError, inputs_of, prompt_of
from scoring.contenders import ContenderView, PeriodView
from scoring.counters import ContenderCounters
from scoring.synthetic import SyntheticRequest

log = logging.getLogger(__name__)

_IMAGES = msgspec.json.Decoder(MinerImagesResponse)
_EMBEDDINGS = msgspec.json.Decoder(MinerEmbeddingList)
_ENCODER = msgspec.json.Encoder()


class Sent(msgspec.Struct):
    """What one synthetic request did (for logs and tests)."""

    outcome: Outcome
    volume: float = 0.0
    job_id: str | None = None


class MinerSender:
    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        catalog: Catalog,
        counters: ContenderCounters,
        queue: CheckQueue,
        token_counters: Mapping[str, TokenCounter],
        organic: OrganicWaiting | None = None,
        defer_s: float = 30.0,
        poll_s: float = 0.1,
    ) -> None:
        self.dispatcher = dispatcher
        self.catalog = catalog
        self.counters = counters
        self.queue = queue
        self.token_counters = token_counters
        self.organic = organic
        self.defer_s = defer_s
        self.poll_s = poll_s
        self.skipped = 0

    @property
    def stats(self) -> MinerStats:
        return self.dispatcher.stats

    async def _room(self, contender: ContenderView) -> bool:
        """Wait (bounded) until the miner is below its announced concurrency and no customer
        waits for the task."""
        key = (contender.task, contender.hotkey)
        until = time.monotonic() + self.defer_s
        while self.stats.snapshot(key).in_flight >= contender.concurrency or (
            self.organic is not None and await self.organic.waiting(contender.task)
        ):
            if time.monotonic() >= until:
                return False
            await asyncio.sleep(self.poll_s)
        return True

    async def send(
        self, period: PeriodView, contender: ContenderView, request: SyntheticRequest
    ) -> None:
        await self.send_one(period, contender, request)

    async def send_one(
        self, period: PeriodView, contender: ContenderView, request: SyntheticRequest
    ) -> Sent | None:
        """Dispatch, record, enqueue the check; None when skipped (no room, unknown task)."""
        task = self.catalog.get(contender.task)
        if task is None:
            return None
        if not await self._room(contender):
            self.skipped += 1
            log.info(
                "synthetic request to %s skipped: at its concurrency (%d) for %.0fs",
                contender.hotkey,
                contender.concurrency,
                self.defer_s,
            )
            return None
        started_wall, started = time.time(), time.monotonic()
        state = DispatchState(
            task, [contender], max_attempts=1, deadline=started + task.timeouts.total_s
        )
        outcome, volume, kind, miner_request, result, receipt = await self._dispatch(
            task, state, request
        )
        if outcome is Outcome.REQUEST_REFUSED:
            # The validator built this request itself from a valid template: a miner that
            # refuses it as invalid is at fault (an organic refusal is the customer's).
            outcome = Outcome.REJECTED
        try:
            await self.counters.record(
                period.id, task.id, contender.hotkey, outcome, volume=volume, organic=False
            )
        except Exception:  # Redis down: this outcome is lost, the schedule goes on
            log.warning("synthetic outcome of %s not counted", contender.hotkey, exc_info=True)
        sent = Sent(outcome, volume)
        if outcome is not Outcome.OK or not state.attempts:
            return sent
        attempt = state.attempts[-1]
        job = await asyncio.to_thread(
            make_job,
            task=task.id,
            kind=kind,
            organic=False,
            request=miner_request,
            result=result,
            hotkey=contender.hotkey,
            uid=contender.uid,
            timings=JobTimings(
                started=started_wall,
                total_s=time.monotonic() - started,
                ttft_s=attempt.ttft_s,
                attempts=1,
            ),
            receipt=receipt,
        )
        try:
            await self.queue.enqueue(job)
        except Exception:
            log.warning("check job for a synthetic request not enqueued", exc_info=True)
            return sent
        sent.job_id = job.job_id
        return sent

    async def _dispatch(
        self, task: Task, state: DispatchState, synthetic: SyntheticRequest
    ) -> tuple[Outcome, float, JobKind, Any, Any, str | None]:
        """(outcome, volume, job kind, miner request, result, receipt) of one attempt."""
        public = synthetic.request
        kind: JobKind = "chat"
        miner_request: Any = None
        try:
            if isinstance(public, ChatCompletionRequest | CompletionRequest):
                counter = self.token_counters[task.id]
                call: TextCall
                if isinstance(public, ChatCompletionRequest):
                    call = chat_call(task, public, counter)
                else:
                    kind, call = (
                        "completion",
                        completion_call(task, public, prompt_of(public.prompt), counter),
                    )
                miner_request = call.request
                output, receipt = await self._text(state, synthetic.path, call)
                return (
                    Outcome.OK,
                    float(output.completion_tokens),
                    kind,
                    call.request,
                    output,
                    receipt,
                )
            if isinstance(public, ImageGenerationRequest):
                assert task.image is not None
                plan = plan_image(task.image, public)
                miner_request = miner_generation(task, public, plan)

                async def images(result: MinerImagesResponse) -> None:
                    if len(result.data) != plan.n:
                        raise ValueError(f"{len(result.data)} images for n={plan.n}")

                delivered = await self.dispatcher.call(
                    state,
                    synthetic.path,
                    _ENCODER.encode(miner_request),
                    decode=_IMAGES.decode,
                    check=images,
                    units=lambda _: float(plan.n * plan.steps),
                    max_bytes=plan.n * (MAX_IMAGE_B64 + 4096) + 65_536,
                )
                volume = float(plan.n * plan.steps)
                return (
                    Outcome.OK,
                    volume,
                    "image",
                    miner_request,
                    delivered.value,
                    receipt_text(delivered.receipt),
                )
            return await self._embeddings(task, state, synthetic.path, public)
        except (AppError, ShapeError, StreamFailure) as exc:
            # Every failed attempt is recorded on the state; no attempt: nothing was sent.
            outcome = _last_outcome(state)
            if outcome is None:
                log.error("synthetic %s request could not be built: %s", task.id, exc)
                return Outcome.INTERNAL_ERROR, 0.0, kind, miner_request, None, None
            return outcome, 0.0, kind, miner_request, None, None

    async def _text(
        self, state: DispatchState, path: str, call: TextCall
    ) -> tuple[Any, str | None]:
        body = _ENCODER.encode(call.request)
        rules = TextRules(n=call.n, max_tokens=call.max_tokens, expect=call.expect)
        idle_s = state.task.timeouts.idle_s
        reader: StreamReader[Any]
        if isinstance(call.request, MinerChatRequest):
            opened = await self.dispatcher.open_stream(
                state, path, body, decode=CHAT_CHUNK.decode, ready=chat_first_token
            )
            reader = StreamReader(opened, rules, idle_s=idle_s)
        else:
            completion = await self.dispatcher.open_stream(
                state, path, body, decode=COMPLETION_CHUNK.decode, ready=completion_first_token
            )
            reader = StreamReader(completion, rules, idle_s=idle_s)
        try:
            output = await reader.read_all()
        finally:
            reader.end()
        return output, receipt_text(reader.opened.receipt)

    async def _embeddings(
        self, task: Task, state: DispatchState, path: str, public: EmbeddingRequest
    ) -> tuple[Outcome, float, JobKind, Any, Any, str | None]:
        spec = task.embedding
        assert spec is not None
        inputs = inputs_of(public.input)
        tokens = count_embedding_inputs(spec, inputs, self.token_counters[task.id])
        dimensions = public.dimensions or spec.dimensions
        miner_request = miner_embeddings(task, inputs, public.dimensions)

        async def vectors(result: MinerEmbeddingList) -> None:
            check_vectors(result, len(inputs), dimensions)

        delivered = await self.dispatcher.call(
            state,
            path,
            _ENCODER.encode(miner_request),
            decode=_EMBEDDINGS.decode,
            check=vectors,
            units=lambda _: float(tokens),
        )
        return (
            Outcome.OK,
            float(tokens),
            "embedding",
            miner_request,
            delivered.value,
            receipt_text(delivered.receipt),
        )


def receipt_text(receipt: object) -> str | None:
    """The receipt as the check job stores it: a ``Receipt``'s verified record, or the raw
    signature text."""
    record = getattr(receipt, "record", None)
    if callable(record):
        text = record()
        return text if isinstance(text, str) else None
    return receipt if isinstance(receipt, str) else None


def _last_outcome(state: DispatchState) -> Outcome | None:
    attempts: list[Attempt] = state.attempts
    if not attempts or attempts[-1].outcome is None:
        return None
    return attempts[-1].outcome
