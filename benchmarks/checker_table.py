"""The checker's table: every honest and cheating miner behaviour, mean and minimum score.

Runs the checker suite (``tests.support.checker_suite``: real miner servers behind the real
gateway, the organic sampler at rate 1, a checker worker storing into SQLite) with ``--jobs``
jobs per behaviour, prints the table and writes it into ``docs/checker.md`` between the
``checker-table`` markers. Targets: every honest job ≥ 0.95; every cheat's mean ≤ 0.2 (≤ 0.1 for
the cheats on constrained requests).

    .venv/bin/python benchmarks/checker_table.py [--jobs 30] \
        [--only text|constrained|image|embedding|forward]

``--only forward`` runs the forward-engine miners (``tests.support.cheats_forward``: honest
float32/bfloat16 upstreams and cheating ones behind the ``forward`` engine) and writes their
table between the ``checker-forward-table`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.cheats_forward import forward_behaviours  # noqa: E402
from tests.support.checker_behaviours import (  # noqa: E402
    all_behaviours,
    constrained_behaviours,
    embedding_behaviours,
    image_behaviours,
    text_behaviours,
)
from tests.support.checker_suite import Row, SuiteResult, run_suite  # noqa: E402

DOC = ROOT / "docs" / "checker.md"
START, END = "<!-- checker-table:start -->", "<!-- checker-table:end -->"
# ``--only forward``: forward-engine miners (tests.support.cheats_forward), their own table.
FORWARD = ("<!-- checker-forward-table:start -->", "<!-- checker-forward-table:end -->")


def verdict(row: Row) -> str:
    if row.honest:
        return "pass" if row.scores and row.minimum >= 0.95 else "FAIL"
    return "pass" if row.scores and row.mean <= row.cheat_mean else "FAIL"


def table(result: SuiteResult, jobs: int, only: str | None = None) -> str:
    lines = [
        "| behaviour | honest | jobs | mean | min | target | verdict | decided by | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result.rows:
        codes = ", ".join(f"{code} {count}" for code, count in row.codes.most_common(4))
        target = "min ≥ 0.95" if row.honest else f"mean ≤ {row.cheat_mean:g}"
        lines.append(
            f"| {row.name} | {'yes' if row.honest else 'no'} | {len(row.scores)} | "
            f"{row.mean:.3f} | {row.minimum:.3f} | {target} | {verdict(row)} | "
            f"{codes} | {row.note} |"
        )
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    lines.append("")
    lines.append(
        f"Produced by `benchmarks/checker_table.py --jobs {jobs}"
        f"{'' if only is None else ' --only ' + only}` on {stamp} "
        f"({platform.machine()}, {result.seconds / 60:.1f} min, "
        f"{sum(len(r.scores) for r in result.rows)} scored jobs, "
        f"{len(result.errors)} request errors)."
    )
    return "\n".join(lines)


def write(text: str, start: str = START, end: str = END) -> None:
    document = DOC.read_text("utf-8")
    head, _, rest = document.partition(start)
    _, _, tail = rest.partition(end)
    DOC.write_text(f"{head}{start}\n{text}\n{end}{tail}", "utf-8")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument(
        "--only", choices=["text", "constrained", "image", "embedding", "forward"], default=None
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    pick = {
        None: all_behaviours,
        "text": text_behaviours,
        "constrained": constrained_behaviours,
        "image": image_behaviours,
        "embedding": embedding_behaviours,
        "forward": forward_behaviours,
    }[args.only]
    with tempfile.TemporaryDirectory(prefix="checker-table-") as directory:
        result = await run_suite(pick(args.jobs), Path(directory))
    text = table(result, args.jobs, args.only)
    print(text)
    for error in result.errors[:10]:
        print("request error:", error)
    if not args.no_write and args.only in (None, "forward"):
        write(text, *(FORWARD if args.only == "forward" else (START, END)))
        print(f"written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
