"""Miner selection: only available candidates, power-of-two-choices spreads load, better live
stats win more often, failover order follows the score."""

from __future__ import annotations

import random
import time
from collections import Counter

from core.miners import InProcessStats, Outcome
from gateway.selection import RouteCache, Selector
from tests.support.gateway import CHAT, StaticRoutes, route


def selector(routes: list, stats: InProcessStats | None = None, seed: int = 0) -> Selector:
    return Selector(StaticRoutes(routes), stats or InProcessStats(), rng=random.Random(seed))


def test_equal_miners_share_the_load_fairly() -> None:
    routes = [route(CHAT, uid) for uid in range(1, 6)]
    chooser = selector(routes)
    firsts = Counter(chooser.order(routes)[0].uid for _ in range(5000))
    assert set(firsts) == {1, 2, 3, 4, 5}
    assert max(firsts.values()) / min(firsts.values()) < 1.3


def test_failover_order_contains_every_other_candidate() -> None:
    routes = [route(CHAT, uid) for uid in range(1, 5)]
    order = selector(routes).order(routes)
    assert sorted(r.uid for r in order) == [1, 2, 3, 4]


def test_cooled_down_and_full_miners_are_skipped() -> None:
    routes = [
        route(CHAT, 1),
        route(CHAT, 2, concurrency=1),
        route(CHAT, 3, concurrency=0),
        route(CHAT, 4),
    ]
    stats = InProcessStats(cooldown_base_s=60)
    stats.release((CHAT, routes[0].hotkey), Outcome.CONNECT_ERROR)
    stats.acquire((CHAT, routes[1].hotkey))
    order = selector(routes, stats).order(routes)
    assert [r.uid for r in order] == [4]
    stats.release((CHAT, routes[1].hotkey), Outcome.OK)
    assert {r.uid for r in selector(routes, stats).order(routes)} == {2, 4}
    assert selector([], stats).order([]) == []


def test_faster_and_better_miners_are_preferred_without_herding() -> None:
    routes = [route(CHAT, 1), route(CHAT, 2), route(CHAT, 3, quality=0.2)]
    stats = InProcessStats(alpha=1.0)
    stats.release((CHAT, routes[0].hotkey), Outcome.OK, ttft_s=0.05)
    stats.release((CHAT, routes[1].hotkey), Outcome.OK, ttft_s=1.0)
    stats.release((CHAT, routes[2].hotkey), Outcome.OK, ttft_s=0.05)
    chooser = selector(routes, stats)
    firsts = Counter(chooser.order(routes)[0].uid for _ in range(3000))
    assert firsts[1] > firsts[2] and firsts[1] > firsts[3]
    assert firsts[2] > 0 or firsts[3] > 0  # two random draws: the best is not always chosen
    assert chooser.order(routes)[1:] == sorted(
        chooser.order(routes)[1:], key=chooser.score, reverse=True
    )


def test_load_lowers_the_score() -> None:
    routes = [route(CHAT, 1, concurrency=4), route(CHAT, 2, concurrency=4)]
    stats = InProcessStats()
    for _ in range(3):
        stats.acquire((CHAT, routes[0].hotkey))
    chooser = selector(routes, stats)
    assert chooser.score(routes[0]) < chooser.score(routes[1])


async def test_route_cache_serves_from_memory_and_refreshes() -> None:
    source = StaticRoutes([route(CHAT, 1)])
    cache = RouteCache(source, refresh_s=0.01)
    assert [r.uid for r in await cache.routes(CHAT)] == [1]
    source.routes_list = [route(CHAT, 2)]
    assert [r.uid for r in await cache.routes(CHAT)] == [1]
    await cache.refresh()
    assert [r.uid for r in await cache.routes(CHAT)] == [2]
    started = time.monotonic()
    assert time.monotonic() - started < 1
