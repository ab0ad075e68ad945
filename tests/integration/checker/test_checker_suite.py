"""The checker suite: every honest behaviour scores ≥ 0.95 on every job, every cheating
behaviour ≤ 0.2 on average (≤ 0.1 for the cheats on constrained requests), over 30 jobs each,
through real miner servers, the real gateway and a `sn19 checker` process (docs/checker.md has
the table these runs produce)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.checker_behaviours import (
    constrained_behaviours,
    embedding_behaviours,
    image_behaviours,
    text_behaviours,
)
from tests.support.checker_suite import SuiteResult, run_suite

pytestmark = [pytest.mark.slow, pytest.mark.redis]

JOBS = 30


def assert_targets(result: SuiteResult) -> None:
    assert result.errors == []
    failures = []
    for row in result.rows:
        if len(row.scores) < JOBS:
            failures.append(f"{row.name}: {len(row.scores)} jobs scored")
        elif row.honest and row.minimum < 0.95:
            failures.append(f"{row.name}: an honest job scored {row.minimum:.3f} ({row.codes})")
        elif not row.honest and row.mean > row.cheat_mean:
            failures.append(f"{row.name}: a cheat averaged {row.mean:.3f} ({row.codes})")
    assert failures == []


async def test_text_behaviours(tmp_path: Path) -> None:
    assert_targets(await run_suite(text_behaviours(JOBS), tmp_path))


async def test_constrained_behaviours(tmp_path: Path) -> None:
    assert_targets(await run_suite(constrained_behaviours(JOBS), tmp_path))


async def test_image_behaviours(tmp_path: Path) -> None:
    assert_targets(await run_suite(image_behaviours(JOBS), tmp_path))


async def test_embedding_behaviours(tmp_path: Path) -> None:
    assert_targets(await run_suite(embedding_behaviours(JOBS), tmp_path))
