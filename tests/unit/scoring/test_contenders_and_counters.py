"""Contenders from capacity answers, routes from contenders, and counter increments."""

from __future__ import annotations

import random

from core.miners.stats import Outcome
from protocol.chainfile import Neuron
from protocol.miner import CapacityResponse, TaskCapacity
from scoring.contenders import ContenderView, PeriodView, plan_contenders, routes_for
from scoring.counters import increments
from scoring.discovery import CapacityAnswer

CHAT, IMAGE = "sn19-tiny-chat", "sn19-tiny-diffusion"


def answer(uid: int, capacities: dict[str, TaskCapacity] | None, axon: str | None = "h:1"):
    neuron = Neuron(uid=uid, hotkey=f"5M{uid}", axon=axon)
    if capacities is None:
        return CapacityAnswer(neuron, None, "unreachable")
    return CapacityAnswer(neuron, CapacityResponse(capacities=capacities))


def test_plan_clamps_draws_and_skips(dev_catalog) -> None:
    answers = [
        answer(
            1,
            {CHAT: TaskCapacity(10**9, 8), IMAGE: TaskCapacity(-5, 1), "nope": TaskCapacity(1, 1)},
        ),
        answer(2, None),
        answer(3, {CHAT: TaskCapacity(1000, 0)}),
        answer(4, {CHAT: TaskCapacity(1000, 2)}, axon=None),
    ]
    plans = plan_contenders(answers, dev_catalog, rng=random.Random(1), quota_scale=0.5)
    got = {(p.hotkey, p.task): p for p in plans}
    assert set(got) == {("5M1", CHAT), ("5M1", IMAGE), ("5M3", CHAT)}
    chat = got["5M1", CHAT]
    assert chat.announced == 10**9 and chat.capacity == dev_catalog.get(CHAT).max_capacity
    assert chat.quota_multiplier in (0.04, 0.08, 0.12, 0.8)
    assert chat.quota == chat.capacity * chat.quota_multiplier * 0.5
    assert got["5M1", IMAGE].capacity == 0 and not got["5M1", IMAGE].routable
    assert not got["5M3", CHAT].routable  # no concurrency
    again = plan_contenders(answers, dev_catalog, rng=random.Random(1), quota_scale=0.5)
    assert again == plans  # the draws are reproducible from the period's seed


def test_routes_for_routable_contenders_with_quality(dev_catalog) -> None:
    def view(id_: int, task: str, capacity: float, concurrency: int) -> ContenderView:
        return ContenderView(
            id_, task, f"5M{id_}", id_, f"http://h:{id_}", capacity, concurrency, 0.04, 1.0
        )

    period = PeriodView(
        7, 100.0, 160.0, 60.0, 1, (view(1, CHAT, 10, 2), view(2, CHAT, 0, 2), view(3, IMAGE, 5, 1))
    )
    routes = routes_for(period, dev_catalog, {(CHAT, "5M1"): 0.5})
    assert [r.hotkey for r in routes[CHAT]] == ["5M1"]
    (route,) = routes[CHAT]
    assert (route.quality, route.period_id, route.period_end, route.volume) == (0.5, 7, 160.0, 10)
    assert routes[IMAGE][0].quality == 1.0
    assert routes["all-minilm-l6-v2"] == []


def test_counter_increments_per_outcome() -> None:
    assert increments(Outcome.OK, volume=120, organic=True) == {
        "requests": 1,
        "organic_requests": 1,
        "consumed": 120,
        "organic_volume": 120,
    }
    assert increments(Outcome.OK, volume=80, organic=False) == {
        "requests": 1,
        "synthetic_requests": 1,
        "consumed": 80,
    }
    assert increments(Outcome.RATE_LIMITED, volume=0, organic=False) == {
        "requests": 1,
        "synthetic_requests": 1,
        "rate_limited": 1,
    }
    for failure in (
        Outcome.TIMEOUT,
        Outcome.SERVER_ERROR,
        Outcome.BAD_RESPONSE,
        Outcome.REJECTED,
        Outcome.CONNECT_ERROR,
        Outcome.MIDSTREAM_ERROR,
    ):
        assert increments(failure, volume=50, organic=True) == {
            "requests": 1,
            "organic_requests": 1,
            "failed": 1,
        }
    assert increments(Outcome.CANCELLED, volume=5, organic=True) == {}
    assert increments(Outcome.INTERNAL_ERROR, volume=5, organic=True) == {}
