"""Weights end to end on both databases with the local chain: inputs gathered from the
database, every input and output stored, set on chain on its cadence, explained by
`sn19 scores show`; an unreachable chain is retried and never crashes the loop."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.chain import ChainUnavailable, LocalChain
from core.db import Database, utcnow
from core.db.tables.scoring import CheckResult
from core.settings import Settings
from protocol.catalog import resolve_catalog
from protocol.chainfile import Neuron, format_chain_file
from scoring import store
from scoring.backoff import Backoff
from scoring.contenders import ContenderPlan
from scoring.counters import Counts
from scoring.onchain import WeightSetter
from scoring.read.explain import explain_miner, summary
from scoring.sync import MetagraphSync
from scoring.weights.runs import load_run

CHAT, IMAGE = "sn19-tiny-chat", "sn19-tiny-diffusion"
VALIDATOR = "5Validator"


def plan(task: str, hotkey: str, uid: int, capacity: float, quota: float) -> ContenderPlan:
    return ContenderPlan(task, hotkey, uid, f"http://m{uid}", capacity, capacity, 4, 0.04, quota)


async def seed(db: Database, periods: int) -> None:
    """``periods`` closed periods of A (good) and B (a 429 and a failure each), then one open."""
    plans = [
        plan(CHAT, "5A", 1, 1000, 40),
        plan(CHAT, "5B", 2, 500, 20),
        plan(IMAGE, "5B", 2, 100, 8),
    ]
    counts = {
        (CHAT, "5A"): Counts(consumed=40, requests=4),
        (CHAT, "5B"): Counts(consumed=20, requests=4, rate_limited=1, failed=1),
        (IMAGE, "5B"): Counts(consumed=8, requests=1),
    }
    current = None
    for index in range(periods + 1):
        current = await store.rotate(
            db,
            closing=current,
            counts=counts,
            plans=plans,
            now=time.time() - 100 + index,
            period_s=3600,
            seed=index,
            opened_by="test",
            block=index,
        )
    now = utcnow()
    async with db.transaction() as session:
        session.add_all(
            [
                CheckResult(
                    task=CHAT,
                    miner_hotkey="5A",
                    quality=1.0,
                    work=100,
                    response_time_s=1.0,
                    organic=False,
                    created_at=now,
                ),
                CheckResult(
                    task=CHAT,
                    miner_hotkey="5B",
                    quality=0.64,
                    work=50,
                    response_time_s=1.0,
                    organic=True,
                    created_at=now,
                ),
                CheckResult(
                    task=IMAGE,
                    miner_hotkey="5B",
                    quality=1.0,
                    work=10,
                    response_time_s=2.0,
                    organic=False,
                    created_at=now,
                ),
                # Too old for the quality window, and another task's: both ignored for chat.
                CheckResult(
                    task=CHAT,
                    miner_hotkey="5B",
                    quality=0.0,
                    work=1,
                    response_time_s=9.0,
                    organic=False,
                    created_at=now - timedelta(days=4),
                ),
            ]
        )


def network(path: Path) -> LocalChain:
    path.write_text(
        format_chain_file(
            [
                Neuron(0, VALIDATOR, stake=1000, validator_permit=True),
                Neuron(1, "5A", axon="127.0.0.1:1"),
                Neuron(2, "5B", axon="127.0.0.1:2"),
            ]
        )
    )
    return LocalChain(path, hotkey=VALIDATOR, block_time_s=0.05, weights_rate_limit=10_000)


def settings_for(db_url: str, chain: Path, **scoring) -> Settings:
    return Settings.from_env(
        {},
        overrides={
            "catalog": "dev",
            "database": {"url": db_url},
            "chain": {"network": "local", "local_file": str(chain)},
            "scoring": {"weights_check_s": 0.05, **scoring},
        },
    )


async def test_weights_are_computed_stored_set_and_explained(
    scoring_db: Database, db_url: str, tmp_path: Path
) -> None:
    chain = network(tmp_path / "chain.txt")
    await MetagraphSync(scoring_db, chain, backoff=Backoff(initial_s=0.1, max_s=0.1)).sync_once()
    await seed(scoring_db, periods=9)
    setter = WeightSetter(
        db=scoring_db,
        chain=chain,
        catalog=resolve_catalog("dev"),
        settings=settings_for(db_url, chain.path, weights_version_key=61000),
        backoff=Backoff(initial_s=0.05, max_s=0.1),
    )
    registry = setter.metrics.registry
    assert registry.get_sample_value("sn19_scoring_weights_set_timestamp_seconds") == 0
    before = time.time()
    assert await setter.step() == "set"
    (record,) = chain.weight_history()
    assert record.hotkey == VALIDATOR and record.uids == [1, 2] and record.version_key == 61000
    # What the SN19WeightsNotSet alert reads (deploy/prometheus/alerts.yml).
    set_at = registry.get_sample_value("sn19_scoring_weights_set_timestamp_seconds")
    assert set_at is not None and set_at >= before
    assert (
        registry.get_sample_value("sn19_scoring_weights_run_timestamp_seconds", {"status": "set"})
        == set_at
    )
    assert max(record.weights) == 65535

    run = await load_run(scoring_db)
    assert run is not None and run.status == "set" and run.version_key == 61000
    assert run.task_weights == pytest.approx(resolve_catalog("dev").normalized_weights())
    factors = {(row.task, row.hotkey): row for _, row in run.factors}
    a, b = factors[CHAT, "5A"], factors[CHAT, "5B"]
    assert (a.check_count, a.quality, a.speed_bonus) == (1, 1.0, 0.25)
    assert b.quality == pytest.approx(0.512) and b.check_count == 1  # no stale, no image rows
    assert a.periods_scored == 9 and a.period_history == pytest.approx(1.0)
    # B: each period good 2/4, p429 = pfail = 1/4, unq = (500 − 20)/500 = 0.96
    b_score = 0.5 * (1 - 0.25 * 0.96) ** 2
    assert b.period_history == pytest.approx(b_score)
    assert [entry.score for entry in b.history] == pytest.approx([b_score] * 9)
    assert b.capacity == 500 and a.capacity == 1000
    weights = {w.hotkey: w for w in run.weights}
    assert weights["5A"].uid == 1 and weights["5A"].weight_u16 == record.weights[0]
    assert sum(w.weight for w in run.weights) == pytest.approx(1.0)

    text = explain_miner(run, "5B")
    assert "task sn19-tiny-chat" in text and "task sn19-tiny-diffusion" in text
    assert f"{b_score:.4f}" in text and "u16" in text
    assert "5A" in summary(run)

    assert await setter.step() is None  # the chain's rate limit: not due yet
    assert len(chain.weight_history()) == 1


async def test_new_validator_with_no_scores_sets_nothing(
    scoring_db: Database, db_url: str, tmp_path: Path
) -> None:
    chain = network(tmp_path / "chain.txt")
    await MetagraphSync(scoring_db, chain, backoff=Backoff(initial_s=0.1, max_s=0.1)).sync_once()
    setter = WeightSetter(
        db=scoring_db,
        chain=chain,
        catalog=resolve_catalog("dev"),
        settings=settings_for(db_url, chain.path),
        backoff=Backoff(initial_s=0.05, max_s=0.1),
    )
    assert await setter.step() == "skipped"
    assert chain.weight_history() == []
    registry = setter.metrics.registry
    assert registry.get_sample_value("sn19_scoring_weights_set_timestamp_seconds") == 0
    assert registry.get_sample_value(
        "sn19_scoring_weights_run_timestamp_seconds", {"status": "skipped"}
    )
    assert (await load_run(scoring_db)).status == "skipped"


async def test_weight_setting_survives_an_unreachable_chain(
    scoring_db: Database, db_url: str, tmp_path: Path, caplog
) -> None:
    chain = network(tmp_path / "chain.txt")
    chain.weights_rate_limit_blocks = 1
    await MetagraphSync(scoring_db, chain, backoff=Backoff(initial_s=0.1, max_s=0.1)).sync_once()
    await seed(scoring_db, periods=3)
    setter = WeightSetter(
        db=scoring_db,
        chain=chain,
        catalog=resolve_catalog("dev"),
        settings=settings_for(db_url, chain.path),
        backoff=Backoff(initial_s=0.02, max_s=0.08),
    )
    chain.down_path.touch()
    with pytest.raises(ChainUnavailable):
        await setter.step()
    caplog.set_level(logging.WARNING, logger="scoring")
    stop = asyncio.Event()
    loop = asyncio.ensure_future(setter.run(stop))
    await asyncio.sleep(0.4)
    assert not loop.done()
    messages = [r.getMessage() for r in caplog.records if r.name == "scoring.onchain"]
    assert any("weights: chain unreachable (attempt 3)" in m for m in messages)
    assert chain.weight_history() == []
    chain.down_path.unlink()
    for _ in range(100):
        if chain.weight_history():
            break
        await asyncio.sleep(0.05)
    assert chain.weight_history(), "weights were set once the chain came back"
    stop.set()
    await asyncio.wait_for(loop, 2)
    assert not loop.exception()


def test_sn19_scores_show_and_periods(fresh_sqlite_url: str, tmp_path: Path) -> None:
    from sn19.commands.scores import command

    async def prepare() -> None:
        db = Database.from_url(fresh_sqlite_url)
        chain = network(tmp_path / "chain.txt")
        try:
            await MetagraphSync(db, chain, backoff=Backoff(initial_s=0.1, max_s=0.1)).sync_once()
            await seed(db, periods=9)
            setter = WeightSetter(
                db=db,
                chain=chain,
                catalog=resolve_catalog("dev"),
                settings=settings_for(fresh_sqlite_url, chain.path),
                backoff=Backoff(initial_s=0.05, max_s=0.1),
            )
            assert await setter.step() == "set"
        finally:
            await db.dispose()

    asyncio.run(prepare())
    config = tmp_path / "validator.toml"
    config.write_text(f'catalog = "dev"\n[database]\nurl = "{fresh_sqlite_url}"\n')
    runner = CliRunner()
    shown = runner.invoke(command, ["show", "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    assert "Weight run 1" in shown.output and ": set" in shown.output
    assert "65535" in shown.output
    miner = runner.invoke(command, ["show", "--config", str(config), "--miner", "5B"])
    assert miner.exit_code == 0, miner.output
    assert (
        "miner 5B (uid 2)" in miner.output and "E = q × (1 + bonus) × P × capacity" in miner.output
    )
    assert "period history (newest first" in miner.output
    # ... and first in words: the factor that limits it most, with its numbers and the period.
    assert "In words: what limits this miner most" in miner.output
    assert "limited this miner most." in miner.output and "→ " in miner.output
    missing = runner.invoke(command, ["show", "--config", str(config), "--run", "99"])
    assert missing.exit_code != 0 and "no weight run 99" in missing.output
    periods = runner.invoke(command, ["periods", "--config", str(config), "--limit", "2"])
    assert periods.exit_code == 0 and "[open]" in periods.output and "[closed]" in periods.output
