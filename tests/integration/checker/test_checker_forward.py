"""Forward-engine miners through the real gateway and a `sn19 checker` process: an honest
upstream (float32 or bfloat16) scores ≥ 0.95 on every job, each cheating upstream (fabricated
logprobs, replay, changed sampling) ≤ 0.1 on average (docs/checker.md, "Forward-engine
miners")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cheats_forward import forward_behaviours
from tests.support.checker_suite import run_suite

pytestmark = [pytest.mark.slow, pytest.mark.redis]

JOBS = 10


async def test_forward_behaviours(tmp_path: Path) -> None:
    result = await run_suite(forward_behaviours(JOBS), tmp_path)
    assert result.errors == []
    failures = []
    for row in result.rows:
        summary = f"{row.name}: mean {row.mean:.3f}, min {row.minimum:.3f} ({dict(row.codes)})"
        print(summary)
        if len(row.scores) < (2 * JOBS if row.honest else JOBS):
            failures.append(f"{row.name}: {len(row.scores)} jobs scored")
        elif row.honest and row.minimum < 0.95 or not row.honest and row.mean > 0.1:
            failures.append(summary)
    assert failures == []
