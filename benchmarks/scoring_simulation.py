"""The validator loop on a local subnet: who gets the weight, who gets the traffic.

Runs ``tests.support.simulation`` (the same setup as ``tests/integration/scoring/
test_simulation.py``): six real miners (two honest and fast, one honest and slow, one failing
30 % of its requests, one rate-limiting half of them, one answering random tokens), the real
synthetic sender in ``scoring.process.run``, a real ``sn19 checker`` process, weights recorded by
the local chain; then organic traffic through the real gateway. Prints one row per miner:
behaviour, final weight, period scores, quality, speed, synthetic requests, organic requests
served and organic share. Needs the Redis of ``--redis-url``.

    .venv/bin/python benchmarks/scoring_simulation.py [--periods 5] [--period-s 12] [--organic 60]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.simulation import run_simulation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--periods", type=int, default=5)
    parser.add_argument("--period-s", type=float, default=12.0)
    parser.add_argument("--organic", type=int, default=60, help="organic requests (0: none)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="sn19-simulation-") as tmp:
        result = asyncio.run(
            run_simulation(
                Path(tmp),
                redis_url=args.redis_url,
                periods=args.periods,
                period_s=args.period_s,
                organic_requests=args.organic,
            )
        )
    print(
        f"{result.periods} periods of {args.period_s:g}s, {result.organic_total} organic "
        f"requests served, {result.elapsed_s:.0f}s in all\n"
    )
    print(result.table())


if __name__ == "__main__":
    main()
