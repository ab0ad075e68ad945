"""What the gateway adds on top of a miner: latency at concurrency 1, 8, 64 and throughput.

Starts one miner (``sn19 miner`` serving the dev chat task with ``InstantTextEngine``: a fixed
16-token answer, no model compute) and one gateway (``sn19 gateway``), each in its own process,
plus an embedded Redis holding the route. Then, from this process, it sends the same chat
request directly to the miner (btauth/1-signed, as the gateway does) and through the gateway,
alternating short rounds of each so both paths see the same machine state, for every
concurrency and for streaming and non-streaming calls.

Prints p50/p99 latency (time to the last byte) of each path, the added latency (gateway −
direct), the RPS of each path and their ratio. Targets: p50 added ≤ 2 ms at concurrency 1;
gateway RPS ≥ 50 % of direct at concurrency 64. Every process shares this machine's cores, so
at high concurrency the load generator, the gateway and the miner compete for CPU.

With ``--billing`` the gateway runs with billing on, as in production: a fresh PostgreSQL
database (created on ``--postgres-url``'s server, migrated, dropped at the end) and the
machine's Redis (``--redis-url``, a unique key prefix, deleted at the end) for the routes, the
key cache and the rate limits; one account with ample credits and a key with high RPM/TPM
limits (so the limiter runs). Every request is then authenticated (cached), rate-limited, held
and settled. Target: p50 added ≤ 3 ms at concurrency 1.

    .venv/bin/python benchmarks/gateway_overhead.py [--duration 2] [--rounds 3] [--billing]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bittensor import http_auth  # noqa: E402

from core.redis import EmbeddedRedis, create_redis  # noqa: E402
from scoring.routes import MinerRoute, RouteStore  # noqa: E402

BENCH_HASH_SECRET = "sn19-benchmark-key-hash-secret"

TASK = "sn19-tiny-chat"
API_KEY = "sk-bench-0123456789"
MESSAGES = [{"role": "user", "content": "Say something short."}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_wallet(root: Path, name: str):
    import bittensor as bt

    wallet = bt.Wallet(name=name, hotkey="default", path=str(root))
    wallet.create_new_coldkey(use_password=False, overwrite=True, suppress=True)
    wallet.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
    return wallet


@contextlib.contextmanager
def process(argv: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{url} exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError(url)


def write_configs(
    work: Path,
    *,
    server: str,
    miner_port: int,
    gateway_port: int,
    redis_url: str,
    prefix: str,
    engine: str,
    extra: str = "",
) -> None:
    """miner.toml (one dev chat task on ``engine``, ample concurrency) and gateway.toml (static
    key, the route store in ``redis_url``) in ``work``, wallets under ``work/wallets``."""
    (work / "miner.toml").write_text(
        f'catalog = "dev"\ntasks = ["{TASK}"]\nhost = "127.0.0.1"\nport = {miner_port}\n'
        f'server = "{server}"\nlog_level = "WARNING"\n'
        f'[wallet]\nname = "miner"\nhotkey = "default"\npath = "{work / "wallets"}"\n'
        f'[task."{TASK}"]\nconcurrency = 4096\nengine = {engine}\n'
    )
    (work / "gateway.toml").write_text(
        f'data_dir = "{work}"\ncatalog = "dev"\n'
        f'[redis]\nurl = "{redis_url}"\nkey_prefix = "{prefix}"\n'
        f'[wallet]\nname = "validator"\nhotkey = "default"\npath = "{work / "wallets"}"\n'
        f'[gateway]\nhost = "127.0.0.1"\nport = {gateway_port}\napi_keys = ["{API_KEY}"]\n'
        f'server = "{server}"\n[telemetry]\nlog_level = "WARNING"\n' + extra
    )


async def publish_route(redis: object, prefix: str, hotkey: str, miner_url: str) -> None:
    """The one miner's route for the benchmark's task, as scoring would publish it."""
    await RouteStore(redis, prefix=prefix).publish(
        TASK,
        [
            MinerRoute(
                task=TASK,
                hotkey=hotkey,
                uid=1,
                url=miner_url,
                concurrency=4096,
                volume=1e9,
                period_start=time.time(),
            )
        ],
        ttl_s=3600,
    )


class Target:
    """One way to send the chat request: direct to the miner, or through the gateway."""

    def __init__(self, name: str, fire: Callable[[bool], Awaitable[None]]) -> None:
        self.name = name
        self.fire = fire


def direct_path(session: aiohttp.ClientSession, miner_url: str, signer, receiver: str) -> Target:
    url = miner_url + "/v1/chat/completions"
    bodies = {
        stream: msgspec.json.encode(
            {
                "model": TASK,
                "messages": MESSAGES,
                "max_tokens": 64,
                "stream": stream,
                "logprobs": True,
                "seed": 1,
                **({"stream_options": {"include_usage": True}} if stream else {}),
            }
        )
        for stream in (False, True)
    }

    async def fire(stream: bool) -> None:
        body = bodies[stream]
        headers = http_auth.sign(
            signer, method="POST", path="/v1/chat/completions", body=body, receiver_ss58=receiver
        )
        headers["Content-Type"] = "application/json"
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"miner answered {response.status}")

    return Target("direct", fire)


def gateway_path(session: aiohttp.ClientSession, gateway_url: str, api_key: str) -> Target:
    url = gateway_url + "/v1/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    bodies = {
        stream: msgspec.json.encode(
            {
                "model": TASK,
                "messages": MESSAGES,
                "max_tokens": 64,
                "stream": stream,
                **({"stream_options": {"include_usage": True}} if stream else {}),
            }
        )
        for stream in (False, True)
    }

    async def fire(stream: bool) -> None:
        async with session.post(url, data=bodies[stream], headers=headers) as response:
            body = await response.read()
            if response.status != 200 or (stream and not body.endswith(b"data: [DONE]\n\n")):
                raise RuntimeError(f"gateway answered {response.status}: {body[:200]!r}")

    return Target("gateway", fire)


async def run_round(path: Target, stream: bool, concurrency: int, duration: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await path.fire(stream)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def measure(
    args: argparse.Namespace, direct: Target, gateway: Target, pids: dict[str, int]
) -> list[list[str]]:
    rows = []
    modes = {"both": (False, True), "json": (False,), "stream": (True,)}[args.stream]
    for stream in modes:
        for concurrency in args.concurrency:
            samples: dict[str, list[float]] = {"direct": [], "gateway": []}
            seconds = {"direct": 0.0, "gateway": 0.0}
            cpu = {"miner": 0.0, "gateway": 0.0, "gw-miner": 0.0}
            for path in (direct, gateway):  # warm-up
                await run_round(path, stream, concurrency, 0.3)
            for _ in range(args.rounds):
                for path in (direct, gateway):
                    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                    started = time.perf_counter()
                    samples[path.name] += await run_round(path, stream, concurrency, args.duration)
                    seconds[path.name] += time.perf_counter() - started
                    used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
                    if os.environ.get("BENCH_DEBUG"):
                        print(path.name, used, len(samples[path.name]), flush=True)
                    if path is direct:
                        cpu["miner"] += used["miner"]
                    else:
                        cpu["gateway"] += used["gateway"]
                        cpu["gw-miner"] += used["miner"]
            d, g = samples["direct"], samples["gateway"]
            rps_d, rps_g = len(d) / seconds["direct"], len(g) / seconds["gateway"]
            rows.append(
                [
                    "stream" if stream else "json",
                    str(concurrency),
                    f"{pct(d, 0.5):.2f}",
                    f"{pct(d, 0.99):.2f}",
                    f"{pct(g, 0.5):.2f}",
                    f"{pct(g, 0.99):.2f}",
                    f"{pct(g, 0.5) - pct(d, 0.5):+.2f}",
                    f"{pct(g, 0.99) - pct(d, 0.99):+.2f}",
                    f"{rps_d:.0f}",
                    f"{rps_g:.0f}",
                    f"{rps_g / rps_d:.0%}",
                    f"{cpu['miner'] / len(d) * 1e6:.0f}",
                    f"{cpu['gateway'] / len(g) * 1e6:.0f}",
                ]
            )
            print("  ".join(rows[-1]), flush=True)
    return rows


async def measure_clients(
    args: argparse.Namespace,
    miner_url: str,
    signer,
    receiver: str,
) -> None:
    """CPU per request of the ``MinerClient``, from this process, straight to the miner: what
    the gateway pays for its miner hop."""
    from core.miners import RequestSigner
    from core.miners.rawhttp import RawMinerClient

    body = msgspec.json.encode(
        {
            "model": TASK,
            "messages": MESSAGES,
            "max_tokens": 64,
            "stream": True,
            "logprobs": True,
            "seed": 1,
            "stream_options": {"include_usage": True},
        }
    )
    request_signer = RequestSigner(signer)
    print("\nminer client (stream to the miner, from this process):")
    print("  client   conc   p50 ms   cpu µs/req")
    for name, factory in (("raw", RawMinerClient),):
        client = factory(request_signer)
        for concurrency in (1, 16):
            await client_round(client, miner_url, body, receiver, 0.3, concurrency)  # warm-up
            cpu = time.process_time()
            latencies = await client_round(
                client, miner_url, body, receiver, args.duration, concurrency
            )
            used = time.process_time() - cpu
            print(
                f"  {name:7s} {concurrency:5d} {pct(latencies, 0.5):8.2f} "
                f"{used / len(latencies) * 1e6:10.0f}",
                flush=True,
            )
        await client.close()


async def client_round(
    client,
    miner_url: str,
    body: bytes,
    receiver: str,
    duration: float,
    concurrency: int,
) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            stream = await client.open_stream(
                miner_url, "/v1/chat/completions", body, receiver=receiver, timeout=10
            )
            try:
                while await stream.next_events(10):
                    pass
            finally:
                stream.close()
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def table(rows: list[list[str]]) -> str:
    head = [
        "mode",
        "conc",
        "direct p50",
        "direct p99",
        "gw p50",
        "gw p99",
        "added p50",
        "added p99",
        "direct rps",
        "gw rps",
        "gw/direct",
        "miner cpu",
        "gw cpu",
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + (
        "\n(latencies in ms, to the last byte; rps: requests per second;"
        "\n cpu: µs of CPU per request of the miner (direct) and of the gateway process)"
    )


class BillingSetup:
    """``--billing``: a fresh migrated PostgreSQL database, the machine's Redis under a unique
    prefix, a funded account and a key with high limits."""

    def __init__(self, args: argparse.Namespace) -> None:
        from sqlalchemy.engine import make_url

        self.server_url = args.postgres_url
        self.name = f"sn19_bench_{uuid.uuid4().hex[:8]}"
        self.url = make_url(args.postgres_url).set(database=self.name).render_as_string(False)
        self.redis_url = args.redis_url
        self.prefix = f"sn19bench:{uuid.uuid4().hex[:8]}:"
        self.api_key = ""

    async def _admin(self, sql: str) -> None:
        import asyncpg
        from sqlalchemy.engine import make_url

        dsn = make_url(self.server_url).set(drivername="postgresql").render_as_string(False)
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    def toml(self) -> str:
        """The gateway's [database] and [billing] sections."""
        return (
            f'[database]\nurl = "{self.url}"\npool_size = 20\n'
            f'[billing]\nenabled = true\nkey_hash_secret = "{BENCH_HASH_SECRET}"\n'
        )

    async def start(self) -> None:
        from billing.components import open_billing
        from core.db.migrate import upgrade
        from core.settings import Settings

        await self._admin(f'CREATE DATABASE "{self.name}"')
        await asyncio.to_thread(upgrade, self.url)
        settings = Settings.from_env(
            {},
            overrides={
                "database": {"url": self.url},
                "redis": {"url": self.redis_url, "key_prefix": self.prefix},
                "billing": {"key_hash_secret": BENCH_HASH_SECRET},
            },
        )
        async with open_billing(settings) as billing:
            account = await billing.accounts.create("benchmark")
            await billing.accounts.grant(account.id, 10**15, actor="benchmark", reason="bench")
            created = await billing.keys.create(
                account.id, "benchmark", rpm_limit=10**9, tpm_limit=10**12
            )
        self.api_key = created.secret

    async def report(self) -> str:
        import asyncpg

        connection = await asyncpg.connect(
            self.url.replace("postgresql+asyncpg://", "postgresql://")
        )
        try:
            records = await connection.fetchval("SELECT count(*) FROM usage_records")
            open_holds = await connection.fetchval(
                "SELECT count(*) FROM holds WHERE status = 'open'"
            )
        finally:
            await connection.close()
        return f"billing: {records} usage records, {open_holds} holds open"

    async def stop(self) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        redis = create_redis(self.redis_url)
        try:
            keys = [key async for key in redis.scan_iter(match=f"{self.prefix}*", count=1000)]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()


async def main(args: argparse.Namespace) -> None:
    billing = BillingSetup(args) if args.billing else None
    if billing is None:
        await bench(args, None)
        return
    await billing.start()
    try:
        await bench(args, billing)
    finally:
        await billing.stop()


async def bench(args: argparse.Namespace, billing: BillingSetup | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="sn19-bench-"))
    miner_wallet = make_wallet(work / "wallets", "miner")
    validator_wallet = make_wallet(work / "wallets", "validator")
    redis_server: EmbeddedRedis | None = None
    if billing is not None:
        redis_url, prefix, api_key = billing.redis_url, billing.prefix, billing.api_key
    else:
        redis_server = EmbeddedRedis(work / "redis")
        redis_url, prefix, api_key = redis_server.start(), "sn19:", API_KEY
    miner_port, gateway_port = free_port(), free_port()
    write_configs(
        work,
        server=args.server,
        miner_port=miner_port,
        gateway_port=gateway_port,
        redis_url=redis_url,
        prefix=prefix,
        engine='{ type = "instant", model = "builtin:instant" }',
        extra=billing.toml() if billing is not None else "",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SN19")}
    redis = create_redis(redis_url)
    miner_url, gateway_url = f"http://127.0.0.1:{miner_port}", f"http://127.0.0.1:{gateway_port}"
    sn19 = [sys.executable, "-m", "sn19"]
    gateway_cmd = sn19
    if args.profile_gateway:
        gateway_cmd = [sys.executable, "-m", "cProfile", "-o", args.profile_gateway, "-m", "sn19"]
    try:
        await publish_route(redis, prefix, miner_wallet.hotkey.ss58_address, miner_url)
        with (
            process(
                [*sn19, "miner", "--config", str(work / "miner.toml")], work / "miner.log", env
            ) as miner,
            process(
                [*gateway_cmd, "gateway", "--config", str(work / "gateway.toml")],
                work / "gateway.log",
                env,
            ) as gateway,
        ):
            await wait_ready(miner_url + "/healthz", miner, work / "miner.log")
            await wait_ready(gateway_url + "/healthz", gateway, work / "gateway.log")
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
            async with aiohttp.ClientSession(connector=connector) as session:
                signer = validator_wallet.hotkey
                paths = (
                    direct_path(session, miner_url, signer, miner_wallet.hotkey.ss58_address),
                    gateway_path(session, gateway_url, api_key),
                )
                print(
                    f"server={args.server}, billing {'on' if billing else 'off'}, "
                    f"{args.rounds} rounds of {args.duration}s per path",
                    flush=True,
                )
                if args.clients:
                    await measure_clients(args, miner_url, signer, miner_wallet.hotkey.ss58_address)
                    return
                rows = await measure(args, *paths, {"miner": miner.pid, "gateway": gateway.pid})
            print()
            print(table(rows))
        if billing is not None:
            print(await billing.report())
    finally:
        await redis.aclose()
        if redis_server is not None:
            redis_server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per round per path")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--server", choices=["granian", "uvicorn"], default="granian")
    parser.add_argument("--stream", choices=["both", "json", "stream"], default="both")
    parser.add_argument(
        "--clients",
        action="store_true",
        help="measure the two miner clients instead of the gateway",
    )
    parser.add_argument("--profile-gateway", metavar="FILE", help="run the gateway under cProfile")
    parser.add_argument(
        "--billing",
        action="store_true",
        help="billing on: PostgreSQL + the machine's Redis, a funded key with high limits",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        help="--billing: the server to create the benchmark database on",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="--billing")
    import uvloop

    uvloop.run(main(parser.parse_args()))
