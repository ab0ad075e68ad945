"""What an idle `sn19 dev` costs: CPU seconds of each of its processes over a window.

Starts `sn19 dev` (its own data directory and ports), waits for its ready banner and a settling
pause, reads each descendant's utime+stime from /proc/<pid>/stat at the start and the end of the
window, prints one line per process and the total as a share of one core, then stops it with
SIGINT (as Ctrl-C would). Linux only. Arguments after ``--`` go to `sn19 dev`:

    .venv/bin/python benchmarks/dev_idle_cpu.py [--window 300] [-- --full-synthetic]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READY = "sn19 dev is running."
TICK = os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command line, CPU seconds) of every process readable."""
    found: dict[int, tuple[int, str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry)] = (
            int(fields[1]),
            command.strip(),
            (int(fields[11]) + int(fields[12])) / TICK,
        )
    return found


def tree(root: int) -> dict[int, tuple[str, float]]:
    """The process ``root`` and all its descendants: pid -> (command line, CPU seconds)."""
    table = processes()
    out: dict[int, tuple[str, float]] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            out[pid] = table[pid][1:]
        todo.extend(child for child, row in table.items() if row[0] == pid)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=300.0, help="seconds measured")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds after ready")
    parser.add_argument("dev_args", nargs="*", help="passed to sn19 dev (after --)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sn19-idle-"))
    log_path = work / "dev.out"
    sn19 = Path(sys.executable).with_name("sn19")
    ports = ["--port", "28480", "--miner-port", "28491"]
    with log_path.open("w") as log:
        dev = subprocess.Popen(
            [str(sn19), "dev", *ports, "--data-dir", str(work / "data"), *args.dev_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600
        while READY not in log_path.read_text():
            if dev.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"sn19 dev did not become ready:\n{log_path.read_text()[-3000:]}")
            time.sleep(1.0)
        time.sleep(args.settle)
        before = tree(dev.pid)
        started = time.monotonic()
        time.sleep(args.window)
        after = tree(dev.pid)
        span = time.monotonic() - started
    finally:
        os.killpg(dev.pid, signal.SIGINT)
        try:
            dev.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
    total = 0.0
    for pid, (command, cpu) in sorted(after.items()):
        if pid not in before:
            continue
        used = cpu - before[pid][1]
        total += used
        name = re.sub(r"^.*?(sn19 \w+|redis-server).*$", r"\1", command)
        print(f"{name:<14} {used:7.1f} CPU s  {100 * used / span:5.1f} % of a core")
    print(
        f"{'all':<14} {total:7.1f} CPU s  {100 * total / span:5.1f} % of a core over {span:.0f} s"
    )


if __name__ == "__main__":
    main()
