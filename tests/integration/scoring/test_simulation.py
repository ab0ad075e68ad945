"""The validator loop end to end on a local subnet (``tests.support.simulation``): six real
miners, the real synthetic sender, a real checker process and the local chain's weights.

Phase 1 (synthetic traffic only): the weights the chain recorded rank the honest fast miners
above the honest slow one, the slow one above the flaky and the rate-limiting ones, and the
cheater (caught by the checker, not by a rule of the test) at almost nothing. Phase 2: organic
traffic through the real gateway goes mostly to the honest fast miners.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.redis_fixtures import REDIS_URL
from tests.support.simulation import run_simulation

pytestmark = [pytest.mark.slow, pytest.mark.redis]


async def test_weights_and_routing_follow_miner_behaviour(tmp_path: Path) -> None:
    result = await run_simulation(tmp_path, redis_url=REDIS_URL, periods=5, period_s=12.0)
    print("\n" + result.table())  # the table is the test's report (with -s)
    weight = {row.name: row.weight for row in result.rows}

    # Every miner was tested by synthetic traffic, and the checker saw the honest ones.
    for row in result.rows:
        assert row.synthetic > 0, row.name
    assert result.row("flaky").failed > 0
    assert result.row("limiter").rate_limited > 0
    assert result.row("cheater").quality is not None and result.row("cheater").quality < 0.2
    for name in ("fast-1", "fast-2", "slow"):
        assert result.row(name).quality is not None and result.row(name).quality > 0.8, name

    # Phase 1: the weights rank behaviour.
    slowest_fast = min(weight["fast-1"], weight["fast-2"])
    assert slowest_fast > weight["slow"]
    assert weight["slow"] > max(weight["flaky"], weight["limiter"])
    assert min(weight["flaky"], weight["limiter"]) > weight["cheater"]
    assert weight["cheater"] < 0.02

    # Phase 2: organic traffic goes mostly to the honest fast miners.
    assert result.organic_total >= 40
    fast = result.organic_share("fast-1") + result.organic_share("fast-2")
    assert fast > 0.5
    assert result.organic_share("cheater") < 0.05
    assert result.organic_share("flaky") < 0.25
    assert result.organic_share("limiter") < 0.25
