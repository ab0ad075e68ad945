"""The gateway's organic sampler: which finished requests become check jobs, and what they
hold."""

from __future__ import annotations

import random

import msgspec

from core.checks import CheckJob, TextResponse
from core.settings import Settings
from gateway.checks import CheckSampler, install_check_sampler
from gateway.hooks import CompletedRequest, CompletionHub, MinerRef, Timings
from protocol.miner import MinerChatRequest
from protocol.records import GeneratedChoice, TextOutput


class Queue:
    def __init__(self, fail: bool = False) -> None:
        self.jobs: list[CheckJob] = []
        self.fail = fail

    async def enqueue(self, job: CheckJob) -> str:
        if self.fail:
            raise ConnectionError("redis is down")
        self.jobs.append(job)
        return "1-0"


def completed(outcome: str = "ok", kind: str = "chat") -> CompletedRequest:
    request = msgspec.convert(
        {"model": "sn19-tiny-chat", "messages": [{"role": "user", "content": "hi"}], "seed": 4},
        MinerChatRequest,
    )
    return CompletedRequest(
        request_id="req_abc",
        task_id="sn19-tiny-chat",
        kind=kind,
        miner_request=request,
        result=TextOutput(
            choices=[
                GeneratedChoice(
                    index=0, token_ids=[1], logprobs=[-0.1], text="x", finish_reason="length"
                )
            ]
        ),
        miner=MinerRef(hotkey="5Miner", uid=7),
        timings=Timings(started=100.0, ttft_s=0.1, total_s=0.5, attempts=2),
        outcome=outcome,
        receipt="cafe",
    )


async def test_a_sampled_answer_becomes_a_job() -> None:
    queue = Queue()
    sampler = CheckSampler(queue, rate=1.0)  # type: ignore[arg-type]
    await sampler(completed())
    [job] = queue.jobs
    assert (job.task, job.kind, job.organic, job.request_id) == (
        "sn19-tiny-chat",
        "chat",
        True,
        "req_abc",
    )
    assert (job.miner.hotkey, job.miner.uid, job.receipt) == ("5Miner", 7, "cafe")
    assert (job.timings.total_s, job.timings.attempts) == (0.5, 2)
    assert isinstance(job.response, TextResponse) and job.response.choices[0].token_ids == [1]
    assert msgspec.json.decode(job.request)["seed"] == 4


async def test_only_complete_answers_at_the_sample_rate() -> None:
    queue = Queue()
    sampler = CheckSampler(queue, rate=0.25, rng=random.Random(1))  # type: ignore[arg-type]
    await sampler(completed(outcome="cancelled"))
    await sampler(completed(kind="something"))
    for _ in range(400):
        await sampler(completed())
    assert 60 < len(queue.jobs) < 140 and sampler.skipped == 402 - len(queue.jobs)


async def test_a_queue_failure_drops_the_sample_quietly() -> None:
    sampler = CheckSampler(Queue(fail=True), rate=1.0)  # type: ignore[arg-type]
    await sampler(completed())
    assert sampler.dropped == 1 and sampler.enqueued == 0


def test_install_subscribes_unless_the_rate_is_zero() -> None:
    hub = CompletionHub()
    off = Settings.from_env({}, overrides={"checker": {"organic_sample_rate": 0.0}})
    assert install_check_sampler(hub, Queue(), off) is None and not hub.active  # type: ignore[arg-type]
    on = Settings.from_env({}, overrides={"checker": {"organic_sample_rate": 0.5}})
    sampler = install_check_sampler(hub, Queue(), on)  # type: ignore[arg-type]
    assert sampler is not None and sampler.rate == 0.5 and hub.active
