"""Scoring's read API (``ScoreboardReader``) on SQLite and PostgreSQL, over a validator history
seeded with scoring's own writers: what it reports agrees with the stored rows, the stored
weight run (``scoring.weights.runs.load_run``), Redis (routes, live counters, the check queue)
and the chain; it degrades to clear states without Redis or chain."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from core.chain import LocalChain
from core.checks import CheckQueue
from core.db import Database, utcnow
from core.db.tables.checks import CheckJobRecord
from core.db.tables.scoring import CheckResult, Contender
from protocol.catalog import Catalog
from protocol.chainfile import format_chain_file
from scoring import ScoreboardReader, formulas
from scoring.counters import ContenderCounters
from scoring.weights.runs import load_run
from tests.support.scoreboard import (
    NETUID,
    Seeded,
    add_checks,
    flaky,
    hotkey,
    neurons,
    seed_scoreboard,
)

CHAT = "sn19-tiny-chat"


def reader(
    db: Database, catalog: Catalog, redis: Redis | None, prefix: str, **kw
) -> ScoreboardReader:
    return ScoreboardReader(db, redis, kw.pop("chain", None), catalog, prefix, netuid=NETUID, **kw)


@pytest.fixture
async def seeded(
    scoring_db: Database, dev_catalog: Catalog, redis_client: Redis, redis_prefix: str
) -> Seeded:
    return await seed_scoreboard(
        scoring_db, dev_catalog, miners=8, periods=10, checks=900, redis=redis_client,
        prefix=redis_prefix,
    )  # fmt: skip


@pytest.mark.redis
async def test_miners_agree_with_the_stored_state(
    scoring_db: Database, dev_catalog: Catalog, redis_client: Redis, redis_prefix: str,
    seeded: Seeded,
) -> None:  # fmt: skip
    board = reader(scoring_db, dev_catalog, redis_client, redis_prefix)
    miners = await board.miners()
    assert [m.uid for m in miners] == list(range(9))
    by_key = {m.hotkey: m for m in miners}
    assert miners[0].status() == "validator" and by_key[hotkey(5)].status() == "not serving"
    assert by_key[hotkey(5)].tasks == ()
    assert {by_key[hotkey(i)].status() for i in (1, 2, 3, 4, 6, 7, 8)} == {"routed"}

    run = await load_run(scoring_db)
    assert run is not None
    factors = {(row.task, row.hotkey): row for _, row in run.factors}
    weights = {w.hotkey: w for w in run.weights}
    live = await ContenderCounters(redis_client, prefix=redis_prefix, ttl_s=60).read_many(
        [(seeded.period.id, c.task, c.hotkey) for c in seeded.period.contenders]
    )
    async with scoring_db.read() as session:
        closed = {
            (c.task, c.hotkey): c
            for c in (
                await session.scalars(
                    select(Contender).where(Contender.period_id == seeded.period.id - 1)
                )
            ).all()
        }
        day = utcnow() - timedelta(hours=24)
        failed = {
            (task, key): n
            for task, key, n in await session.execute(
                select(CheckResult.task, CheckResult.miner_hotkey, func.count())
                .where(CheckResult.created_at >= day, CheckResult.quality < 0.5)
                .group_by(CheckResult.task, CheckResult.miner_hotkey)
            )
        }
    for contender in seeded.period.contenders:
        pair = (contender.task, contender.hotkey)
        miner = by_key[contender.hotkey]
        state = miner.task(contender.task)
        assert state is not None
        assert (state.capacity, state.concurrency, state.quota) == (
            contender.capacity, contender.concurrency, contender.quota,
        )  # fmt: skip
        assert state.routed is True and state.route_concurrency == contender.concurrency
        counts = live[(seeded.period.id, *pair)]
        assert state.current is not None and state.current.requests == counts.requests
        assert state.current.failed == counts.failed
        assert state.last is not None and state.last.score == closed[pair].period_score
        assert state.last.requests == closed[pair].requests
        factor = factors[pair]
        assert (state.quality, state.speed_metric, state.speed_bonus) == (
            factor.quality, factor.speed_metric, factor.speed_bonus,
        )  # fmt: skip
        assert state.check_count == factor.check_count
        assert state.failed_checks_24h == failed.get(pair, 0)
        assert miner.weight == weights[contender.hotkey].weight
        assert miner.weight_u16 == weights[contender.hotkey].weight_u16
    assert sum(m.weight or 0 for m in miners) == pytest.approx(1.0)
    flaky_miner = by_key[hotkey(3)]
    assert flaky(3) and flaky_miner.failed_checks_24h > by_key[hotkey(1)].failed_checks_24h


@pytest.mark.redis
async def test_a_miners_weight_is_explained_to_its_u16(
    scoring_db: Database, dev_catalog: Catalog, redis_client: Redis, redis_prefix: str,
    seeded: Seeded,
) -> None:  # fmt: skip
    board = reader(scoring_db, dev_catalog, redis_client, redis_prefix)
    detail = await board.miner(hotkey(3))
    assert detail is not None and detail.miner.uid == 3
    explained = detail.explanation
    assert explained is not None and explained.status == "set"
    run = await load_run(scoring_db)
    assert run is not None and explained.run_id == run.id
    stored = {row.task: row for _, row in run.factors if row.hotkey == hotkey(3)}
    assert {t.factor.task for t in explained.tasks} == set(stored)
    for task in explained.tasks:
        f = task.factor
        assert f == stored[f.task]  # the stored factors, as `sn19 scores show` reads them
        assert f.effective == pytest.approx(
            (f.quality or 0) * (1 + f.speed_bonus) * f.period_history * f.capacity
        )
        assert f.share == pytest.approx(f.effective / task.total_effective)
        assert f.cubed_share == pytest.approx(f.share**3 / task.total_cubes)
        history = sum(h.score * h.weight for h in task.history) / sum(
            h.weight for h in task.history
        )
        factor = formulas.NEW_MINER_FACTOR if task.new_miner else 1.0
        assert f.period_history == pytest.approx(history * factor)
        assert task.new_miner == (len(task.history) <= formulas.NEW_MINER_PERIODS)
    assert explained.weight == pytest.approx(explained.contributions / explained.all_contributions)
    assert explained.weight_u16 == round(explained.weight / explained.max_weight * 65535)
    assert explained.weight_u16 == detail.miner.weight_u16

    # Per task: period history oldest first, quality now from the task's checks only.
    since = utcnow() - timedelta(seconds=board.quality_window_s)
    for task in detail.tasks:
        assert [p.period_id for p in task.history] == sorted(p.period_id for p in task.history)
        assert len(task.history) == 10
        async with scoring_db.read() as session:
            scores = list(
                (
                    await session.scalars(
                        select(CheckResult.quality).where(
                            CheckResult.task == task.task,
                            CheckResult.miner_hotkey == hotkey(3),
                            CheckResult.created_at >= since,
                        )
                    )
                ).all()
            )
        assert task.checks == len(scores) and sum(task.histogram) == len(scores)
        assert task.quality_now == pytest.approx(formulas.quality(scores))
        assert task.speed_now is not None

    # Failed checks: newest first, below 0.5, with the checker's reason once it records one.
    assert 0 < len(detail.failures) <= 20
    assert all(f.quality < 0.5 for f in detail.failures)
    assert [f.created_at for f in detail.failures] == sorted(
        (f.created_at for f in detail.failures), reverse=True
    )
    newest = detail.failures[0]
    async with scoring_db.transaction() as session:
        session.add(
            CheckJobRecord(
                job_id="job-1", result_id=newest.id, task=newest.task, kind="chat",
                miner_hotkey=hotkey(3), reason="token outside the nucleus",
                evidence={"position": 7, "p_ref": 0.0001},
            )
        )  # fmt: skip
    again = await board.miner(hotkey(3))
    assert again is not None and again.failures[0].reason == "token outside the nucleus"
    assert again.failures[0].evidence == "position=7, p_ref=0.0001"
    assert await board.miner("5Nobody") is None


@pytest.mark.redis
async def test_checker_stats_and_the_queue(
    scoring_db: Database, dev_catalog: Catalog, redis_client: Redis, redis_prefix: str,
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    queue = CheckQueue(redis_client, prefix=redis_prefix)
    await queue.ensure_group()
    for index in range(3):
        await redis_client.xadd(queue.stream, {"job": f"job-{index}".encode()})
    delivered = await queue.read("worker-1", count=2, block_ms=0)
    await queue.dead_letter(delivered[0], "kept killing workers")
    board = reader(scoring_db, dev_catalog, redis_client, redis_prefix)
    stats = await board.checker_stats()
    assert stats.queue.available and stats.queue.stream == queue.stream
    assert (stats.queue.length, stats.queue.pending, stats.queue.dead_letters) == (3, 1, 1)

    async with scoring_db.read() as session:
        rows = (
            await session.execute(
                select(CheckResult.task, CheckResult.quality).where(
                    CheckResult.created_at >= stats.window_start
                )
            )
        ).all()
    assert stats.total == len(rows) == 900  # seeded over the last 20 hours
    for task in stats.tasks:
        scores = [quality for name, quality in rows if name == task.task]
        assert task.total == len(scores) == sum(task.per_hour)
        assert task.failed == sum(1 for s in scores if s < 0.5)
        assert task.histogram[0] == sum(1 for s in scores if s < 0.1)
        assert task.histogram[9] == sum(1 for s in scores if s >= 0.9)
        assert task.per_hour[-1] + task.per_hour[-2] > 0  # the last hours are in the window
    assert len(stats.hours) == 24 and stats.hours[-1] <= utcnow()

    # Counted once per process: later calls read only newer results (here every older id is
    # settled), wherever their time falls: a result stored late counts in its own hour.
    monkeypatch.setattr("scoring.read.checks.LIVE_IDS", 0)
    board = reader(scoring_db, dev_catalog, redis_client, redis_prefix)
    before = next(t for t in (await board.checker_stats()).tasks if t.task == CHAT)
    now = utcnow()
    late = [(q, now) for q in (0.0, 0.2, 1.0)] + [(0.95, now - timedelta(hours=5))]
    await add_checks(scoring_db, iter([
        {"task": CHAT, "miner_hotkey": hotkey(1), "quality": q, "work": 10.0,
         "response_time_s": 1.0, "organic": False, "created_at": at}
        for q, at in late
    ]))  # fmt: skip
    again = await board.checker_stats()
    chat = next(t for t in again.tasks if t.task == CHAT)
    assert chat.total == before.total + 4 and chat.failed == before.failed + 2
    assert chat.histogram[9] == before.histogram[9] + 2
    if again.hours == stats.hours:  # (not across an hour boundary)
        assert chat.per_hour[-1] == before.per_hour[-1] + 3
        assert chat.per_hour[-6] == before.per_hour[-6] + 1


@pytest.mark.redis
async def test_chain_status_weight_runs_and_periods(
    scoring_db: Database, dev_catalog: Catalog, redis_client: Redis, redis_prefix: str,
    seeded: Seeded, tmp_path: Path,
) -> None:  # fmt: skip
    path = tmp_path / "chain.txt"
    path.write_text(format_chain_file(neurons(8)))
    chain = LocalChain(path, netuid=NETUID, block_time_s=0.5, weights_rate_limit=100)
    board = reader(
        scoring_db, dev_catalog, redis_client, redis_prefix, chain=chain, network="local"
    )
    status = await board.chain_status()
    assert status.state == "ok" and status.block is not None and status.rate_limit == 100
    assert status.last_weights_block is None and status.next_allowed_block == status.block
    assert status.blocks_to_wait == 0
    assert status.neurons == 9 and status.synced_block == 4_000_000
    assert status.last_set is not None and status.last_set.id == seeded.run_id
    assert status.last_set.nonzero == status.last_set.miners == 7

    runs = await board.weight_runs()
    assert [r.id for r in runs] == [seeded.run_id] and runs[0].status == "set"
    periods = await board.periods(limit=5)
    assert [p.id for p in periods] == [seeded.period.id - i for i in range(5)]
    assert periods[0].status == "open" and periods[0].requests == 0
    assert periods[1].contenders == 21 and periods[1].routable == 21 and periods[1].miners == 7
    assert periods[1].requests > 0 and periods[1].mean_score is not None

    # An unreachable chain is a state, not an error; the answer is cached briefly.
    board = reader(scoring_db, dev_catalog, None, redis_prefix, chain=chain, chain_cache_s=0)
    chain.down_path.write_text("")
    down = await board.chain_status()
    assert down.state == "unreachable" and "down" in down.error
    assert down.block is None and down.last_set is not None


class SlowChain(LocalChain):
    async def current_block(self) -> int:
        await asyncio.sleep(5)
        return 1


async def test_without_redis_chain_or_data(
    scoring_db: Database, dev_catalog: Catalog, tmp_path: Path
) -> None:
    board = reader(
        scoring_db, dev_catalog, None, "", chain=SlowChain(tmp_path / "c.txt"), chain_timeout_s=0.2
    )
    assert await board.miners() == []
    assert await board.miner(hotkey(1)) is None
    assert await board.periods() == [] and await board.weight_runs() == []
    stats = await board.checker_stats()
    assert stats.total == 0 and not stats.queue.available
    assert [t.task for t in stats.tasks] == [t.id for t in dev_catalog.enabled()]
    status = await board.chain_status()
    assert status.state == "unreachable" and "0.2 s" in status.error
    assert status.neurons == 0 and status.last_run is None
    assert (await reader(scoring_db, dev_catalog, None, "").chain_status()).state == "not connected"

    # Seeded but without Redis: routing unknown (None), no live counters; scores still there.
    await seed_scoreboard(scoring_db, dev_catalog, miners=4, periods=3, checks=120)
    miners = await board.miners()
    state = miners[1].task(CHAT)
    assert state is not None and state.routed is None and state.current is None
    assert state.last is not None and state.quality is not None
    assert miners[1].status() == "routed"  # inferred from the open period's contender


async def test_the_local_file_network_is_read_without_a_connection(
    scoring_db: Database, dev_catalog: Catalog, tmp_path: Path, wallet_root: Path
) -> None:
    """``sn19 dev``'s chain is a file: the dashboard's reader opens it by itself (no "not
    connected" on a working local chain); without the file it stays the database view."""
    from core.settings import Settings
    from protocol.chainfile import Neuron
    from scoring.read.board import local_chain
    from tests.support.wallets import make_wallet

    wallet = make_wallet(wallet_root, "reader-validator")
    chain_file = tmp_path / "chain.txt"
    settings = Settings.from_env(
        {},
        overrides={
            "data_dir": str(tmp_path),
            "chain": {"local_file": str(chain_file)},
            "wallet": {"name": "reader-validator", "hotkey": "default", "path": str(wallet_root)},
        },
    )
    assert local_chain(settings) is None  # no file yet
    chain_file.write_text(
        format_chain_file([Neuron(0, wallet.hotkey.ss58_address, stake=1, validator_permit=True)])
    )
    board = ScoreboardReader.from_settings(settings, db=scoring_db, redis=None, catalog=dev_catalog)
    status = await board.chain_status()
    assert status.state == "ok" and status.block is not None
