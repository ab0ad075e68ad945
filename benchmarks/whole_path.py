"""The whole validator → miner → inference-server path against the inference server alone.

Starts a canned OpenAI-compatible server (``benchmarks/canned_upstream.py``: a 16-token answer
in vLLM's format with token ids and logprobs, about 0.1 ms of CPU a request), ``sn19 miner``
with the ``forward`` engine in front of it (how most miners serve), and ``sn19 gateway``
(billing off, an embedded Redis holding the route), each in its own process. Then, from this
process, it sends the same chat request to the canned server directly and through the gateway,
alternating short rounds of each so both paths see the same machine state, for every
concurrency, streamed and not.

Prints p50/p99 latency (to the last byte) of each path and the difference, the requests per
second of each path, and the CPU per request of the gateway, the miner and the upstream during
the whole-path rounds (µs, from /proc). The machine's cores are shared by the load generator
and all three servers, so at high concurrency they compete for CPU: compare runs made on the
same machine in the same state, and quote ranges.

    .venv/bin/python benchmarks/whole_path.py [--duration 2] [--rounds 3] [--concurrency 1 8 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_overhead import (
    API_KEY,
    MESSAGES,
    Target,
    cpu_seconds,
    free_port,
    gateway_path,
    make_wallet,
    pct,
    process,
    publish_route,
    run_round,
    wait_ready,
    write_configs,
)

from core.redis import EmbeddedRedis, create_redis


def upstream_path(session: aiohttp.ClientSession, url: str) -> Target:
    """The client's request straight to the inference server (what a miner's server serves)."""
    bodies = {
        stream: msgspec.json.encode(
            {
                "model": "m",
                "messages": MESSAGES,
                "max_tokens": 64,
                "stream": stream,
                "logprobs": True,
                **({"stream_options": {"include_usage": True}} if stream else {}),
            }
        )
        for stream in (False, True)
    }
    headers = {"Content-Type": "application/json"}

    async def fire(stream: bool) -> None:
        async with session.post(
            url + "/v1/chat/completions", data=bodies[stream], headers=headers
        ) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"upstream answered {response.status}")

    return Target("direct", fire)


async def wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            await asyncio.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


async def measure(
    args: argparse.Namespace, direct: Target, whole: Target, pids: dict[str, int]
) -> list[list[str]]:
    rows: list[list[str]] = []
    modes = {"both": (False, True), "json": (False,), "stream": (True,)}[args.stream]
    for stream in modes:
        for concurrency in args.concurrency:
            samples: dict[str, list[float]] = {"direct": [], "gateway": []}
            seconds = {"direct": 0.0, "gateway": 0.0}
            cpu = dict.fromkeys(pids, 0.0)
            for path in (direct, whole):  # warm-up
                await run_round(path, stream, concurrency, 0.3)
            for _ in range(args.rounds):
                for path in (direct, whole):
                    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                    started = time.perf_counter()
                    samples[path.name] += await run_round(path, stream, concurrency, args.duration)
                    seconds[path.name] += time.perf_counter() - started
                    if path is whole:
                        for name, pid in pids.items():
                            cpu[name] += cpu_seconds(pid) - before[name]
            d, w = samples["direct"], samples["gateway"]
            rps_d, rps_w = len(d) / seconds["direct"], len(w) / seconds["gateway"]
            rows.append(
                [
                    "stream" if stream else "json",
                    str(concurrency),
                    f"{pct(d, 0.5):.2f}",
                    f"{pct(d, 0.99):.2f}",
                    f"{pct(w, 0.5):.2f}",
                    f"{pct(w, 0.99):.2f}",
                    f"{pct(w, 0.5) - pct(d, 0.5):+.2f}",
                    f"{rps_d:.0f}",
                    f"{rps_w:.0f}",
                    *(
                        f"{cpu[name] / len(w) * 1e6:.0f}"
                        for name in ("gateway", "miner", "upstream")
                    ),
                ]
            )
            print("  ".join(rows[-1]), flush=True)
    return rows


HEAD = [
    "mode",
    "conc",
    "direct p50",
    "direct p99",
    "whole p50",
    "whole p99",
    "added p50",
    "direct rps",
    "whole rps",
    "gw cpu",
    "miner cpu",
    "upstream cpu",
]


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEAD, *rows]) for i in range(len(HEAD))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [HEAD, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + (
        "\n(latencies in ms to the last byte; rps: requests per second; cpu: µs of CPU per"
        "\n whole-path request of each process)"
    )


async def bench(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="sn19-whole-"))
    miner_wallet = make_wallet(work / "wallets", "miner")
    make_wallet(work / "wallets", "validator")
    redis_server = EmbeddedRedis(work / "redis")
    redis_url, prefix = redis_server.start(), "sn19:"
    upstream_port, miner_port, gateway_port = free_port(), free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    write_configs(
        work,
        server=args.server,
        miner_port=miner_port,
        gateway_port=gateway_port,
        redis_url=redis_url,
        prefix=prefix,
        engine='{ type = "forward", model = "m", '
        f'options = {{ base_url = "{upstream_url}/v1" }} }}',
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SN19")}
    redis = create_redis(redis_url)
    miner_url, gateway_url = f"http://127.0.0.1:{miner_port}", f"http://127.0.0.1:{gateway_port}"
    sn19 = [sys.executable, "-m", "sn19"]
    canned = [sys.executable, str(Path(__file__).parent / "canned_upstream.py"), str(upstream_port)]
    try:
        await publish_route(redis, prefix, miner_wallet.hotkey.ss58_address, miner_url)
        with (
            process(canned, work / "upstream.log", env) as upstream,
            process(
                [*sn19, "miner", "--config", str(work / "miner.toml")], work / "miner.log", env
            ) as miner,
            process(
                [*sn19, "gateway", "--config", str(work / "gateway.toml")],
                work / "gateway.log",
                env,
            ) as gateway,
        ):
            await wait_port(upstream_port)
            await wait_ready(miner_url + "/healthz", miner, work / "miner.log")
            await wait_ready(gateway_url + "/healthz", gateway, work / "gateway.log")
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
            async with aiohttp.ClientSession(connector=connector) as session:
                print(
                    f"server={args.server}, billing off, {args.rounds} rounds of "
                    f"{args.duration}s per path",
                    flush=True,
                )
                rows = await measure(
                    args,
                    upstream_path(session, upstream_url),
                    gateway_path(session, gateway_url, API_KEY),
                    {"gateway": gateway.pid, "miner": miner.pid, "upstream": upstream.pid},
                )
            print()
            print(table(rows))
    finally:
        await redis.aclose()
        redis_server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per round per path")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--server", choices=["granian", "uvicorn"], default="granian")
    parser.add_argument("--stream", choices=["both", "json", "stream"], default="both")
    import uvloop

    uvloop.run(bench(parser.parse_args()))
