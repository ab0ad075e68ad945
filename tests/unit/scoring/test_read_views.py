"""The read API's views: miner statuses and their precedence, the chain's next allowed block,
score histograms (pure; the queries are tested in tests/integration/scoring/test_read_api.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from scoring import ChainStatus, MinerView, TaskState
from scoring.read.views import histogram


def miner(
    *tasks: TaskState, axon: str | None = "1.2.3.4:8091", uid: int | None = 7, **kw
) -> MinerView:
    return MinerView(hotkey="5H", uid=uid, axon=axon, tasks=tasks, **kw)


def test_statuses_and_their_precedence() -> None:
    routed = TaskState("chat", capacity=10, concurrency=2, routed=True)
    cooled = TaskState("image", capacity=5, concurrency=1, routed=True, cooled=True)
    idle = TaskState("embed", capacity=0, concurrency=0, routed=False)
    assert miner(routed, cooled).status() == "routed"
    assert miner(routed, cooled).status("image") == "cooled"
    assert miner(cooled, idle).status() == "cooled"
    assert miner(idle).status() == "no contender"
    assert miner(idle, axon=None).status() == "not serving"
    assert miner(routed, uid=None).status() == "routed"  # deregistered since the period opened
    assert miner(idle, uid=None).status() == "deregistered"
    assert miner(axon=None, validator_permit=True).status() == "validator"
    # Without Redis the routing table is unknown: a routable contender is what it holds.
    unknown = TaskState("chat", capacity=10, concurrency=2, routed=None)
    assert unknown.in_routes and miner(unknown).status() == "routed"
    assert not TaskState("chat", capacity=10, concurrency=0).in_routes


def test_miner_totals() -> None:
    view = miner(
        TaskState("chat", quality=0.9, failed_checks_24h=2),
        TaskState("image", quality=0.5, failed_checks_24h=1),
        TaskState("embed"),
    )
    assert view.quality == 0.7 and view.failed_checks_24h == 3
    assert miner().quality is None and view.task("image") is not None and not view.task("x")


def test_next_allowed_block() -> None:
    base = {"network": "finney", "netuid": 19, "state": "ok"}
    assert ChainStatus(**base).next_allowed_block is None  # rate limit unknown
    never = ChainStatus(**base, block=500, rate_limit=100)
    assert (never.next_allowed_block, never.blocks_to_wait) == (500, 0)
    waiting = ChainStatus(**base, block=500, last_weights_block=450, rate_limit=100)
    assert (waiting.next_allowed_block, waiting.blocks_to_wait) == (550, 50)
    late = ChainStatus(**base, block=700, last_weights_block=450, rate_limit=100)
    assert late.blocks_to_wait == 0
    assert ChainStatus(**base, last_weights_block=450, rate_limit=100).blocks_to_wait is None
    assert datetime.now(UTC)  # views carry aware datetimes; nothing else to check here


def test_histogram_buckets() -> None:
    assert histogram([0.0, 0.05, 0.1, 0.499, 0.5, 0.95, 1.0, 1.0]) == (2, 1, 0, 0, 1, 1, 0, 0, 0, 3)
    assert histogram([]) == (0,) * 10
