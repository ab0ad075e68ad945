"""Miner selection: only available candidates, power-of-two-choices spreads load, better live
stats win more often, failover order follows the score."""

from __future__ import annotations

import random
import time
from collections import Counter

import msgspec

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


async def test_only_miners_with_an_open_contender_for_the_task_are_candidates() -> None:
    """Routes are the scoring leader's open contenders: a miner with great live numbers but no
    route for the task (none at all, or only for another task) is never picked."""
    chat = [route(CHAT, 1), route(CHAT, 2)]
    other = route("all-minilm-l6-v2", 3)
    stats = InProcessStats(alpha=1.0)
    stray = (CHAT, "5Stray" + "x" * 42)
    stats.release(stray, Outcome.OK, ttft_s=0.001)
    stats.release((CHAT, other.hotkey), Outcome.OK, ttft_s=0.001)
    stats.release((CHAT, chat[0].hotkey), Outcome.OK, ttft_s=5.0)
    chooser = Selector(StaticRoutes([*chat, other]), stats, rng=random.Random(3))
    picked = {r.hotkey for _ in range(300) for r in await chooser.candidates(CHAT)}
    assert picked == {chat[0].hotkey, chat[1].hotkey}
    assert await Selector(StaticRoutes([other]), stats).candidates(CHAT) == []


def test_routes_of_an_ended_period_are_not_used_after_the_grace() -> None:
    now = 1_000_000.0
    live = msgspec.structs.replace(route(CHAT, 1), period_end=now + 600)
    just_ended = msgspec.structs.replace(route(CHAT, 2), period_end=now - 10)
    closed = msgspec.structs.replace(route(CHAT, 3), period_end=now - 31)
    unknown = route(CHAT, 4)  # period_end 0: no period information (tests, old tables)
    chooser = Selector(StaticRoutes([]), InProcessStats(), route_grace_s=30.0, wall=lambda: now)
    order = chooser.order([live, just_ended, closed, unknown])
    assert sorted(r.uid for r in order) == [1, 2, 4]


def test_faster_generation_raises_the_score_within_bounds() -> None:
    routes = [route(CHAT, 1), route(CHAT, 2), route(CHAT, 3)]
    stats = InProcessStats(alpha=1.0)
    for r, rate in zip(routes, (100.0, 200.0, 1000.0), strict=True):
        stats.release((CHAT, r.hotkey), Outcome.OK, ttft_s=0.2, units=rate, duration_s=1.0)
    chooser = selector(routes, stats)
    mean = chooser.mean_rate(routes)
    slow, fast, fastest = (chooser.score(r, mean) for r in routes)
    assert slow < fast < fastest
    assert fastest <= 2.0 * chooser.score(routes[2])  # bounded: speed never dominates
