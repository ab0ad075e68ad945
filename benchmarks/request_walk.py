"""Walk one streamed chat request through the gateway and count the cross-file hops.

Serves the gateway on a real port in this process, over in-memory miners
(``tests.support.fake_miner``: the real app, routing, dispatch, relay, billing seam and
bookkeeping; only the miner's network is canned), sends one warm-up request, then traces the
next one with ``sys.setprofile`` and reports, for the project's own modules (``protocol``,
``core``, ``billing``, ``scoring``, ``gateway``):

- the modules the request passed through, in order of first visit;
- cross-file calls: calls from a function of one project module into another, and the
  distinct ones (caller module, callee module, callee function): what a reader following the
  request through the code has to open;
- mutual pairs: pairs of modules that call each other (``a → b`` and ``b → a``), the
  ping-pong that makes a path hard to follow.

    .venv/bin/python benchmarks/request_walk.py [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PACKAGES = ("protocol", "core", "billing", "scoring", "gateway")


def module_of(frame: FrameType) -> str | None:
    name = frame.f_globals.get("__name__", "")
    if not isinstance(name, str) or name.split(".")[0] not in PACKAGES:
        return None
    return name


class Walk:
    def __init__(self) -> None:
        self.order: list[str] = []
        self.calls = 0
        self.edges: set[tuple[str, str, str]] = set()

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        callee = module_of(frame)
        if callee is None:
            return
        caller_frame = frame.f_back
        caller = module_of(caller_frame) if caller_frame is not None else None
        if callee not in self.order:
            self.order.append(callee)
        if caller is not None and caller != callee:
            self.calls += 1
            self.edges.add((caller, callee, frame.f_code.co_name))

    def mutual(self) -> list[tuple[str, str]]:
        pairs = {(a, b) for a, b, _ in self.edges}
        return sorted((a, b) for a, b in pairs if (b, a) in pairs and a < b)


async def walk() -> Walk:
    import aiohttp

    from core.miners import InProcessStats
    from gateway import create_app
    from tests.support.fake_miner import Canned, FakeMinerClient
    from tests.support.gateway import AUTH, CHAT, FakeRedis, StaticRoutes, all_routes, settings_for
    from tests.support.miner_streams import chat_chunks, stream_body
    from tests.support.serving import serve_app

    payload = {
        "model": CHAT,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 16,
        "stream": True,
    }
    answer = Canned(200, stream_body(chat_chunks(16)))
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            settings_for(Path(tmp)),
            redis=FakeRedis(),
            routes=StaticRoutes(all_routes()),
            miner_client=FakeMinerClient(lambda *_: answer),
            stats=InProcessStats(),
        )
        async with serve_app(app) as url, aiohttp.ClientSession() as session:

            async def send() -> int:
                async with session.post(
                    url + "/v1/chat/completions", json=payload, headers=AUTH
                ) as response:
                    await response.read()
                    return response.status

            await send()  # warm-up: imports, caches
            await asyncio.sleep(0.1)
            tracer = Walk()
            sys.setprofile(tracer)
            try:
                status = await send()
                await asyncio.sleep(0.1)  # the background settle and bookkeeping
            finally:
                sys.setprofile(None)
            assert status == 200
    return tracer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = asyncio.run(walk())
    if args.json:
        print(
            json.dumps(
                {
                    "modules": result.order,
                    "cross_file_calls": result.calls,
                    "distinct_cross_file_calls": len(result.edges),
                    "mutual_pairs": result.mutual(),
                }
            )
        )
        return
    print(f"modules visited ({len(result.order)}):")
    for name in result.order:
        print(f"  {name}")
    print(f"cross-file calls: {result.calls} ({len(result.edges)} distinct)")
    mutual = result.mutual()
    print(f"modules calling each other: {len(mutual)}")
    for a, b in mutual:
        print(f"  {a} <-> {b}")


if __name__ == "__main__":
    main()
