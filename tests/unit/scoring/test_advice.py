"""The weight explained in words (``scoring.read.advice``): for a miner with failures, one that
offers little of the capacity others do, and one with low quality, the dominant factor is
named with its numbers and period, and the gains agree with the formulas."""

from __future__ import annotations

import math

import pytest

from scoring import formulas
from scoring.read.advice import PeriodFacts, TaskAdvice, advice_text, advise_task, peers_of
from scoring.weights.formula import FactorRow, HistoryEntry

WINDOW_S = 7200.0


def row(
    hotkey: str,
    *,
    quality: float = 0.98,
    speed: float = 100.0,
    bonus: float = 0.25,
    capacity: float = 10_000.0,
    scores: list[float] | None = None,
    checks: int = 40,
) -> FactorRow:
    scores = scores if scores is not None else [1.0] * 12
    history = [
        HistoryEntry(period_id=900 - age, score=score, consumed=400.0, quota=400.0)
        for age, score in enumerate(scores)
    ]
    return FactorRow(
        task="chat",
        hotkey=hotkey,
        check_count=checks,
        quality=quality,
        speed_metric=speed,
        speed_bonus=bonus,
        history=history,
        periods_scored=len(scores),
        period_history=formulas.period_history([(s, 400.0, 400.0) for s in scores]),
        capacity=capacity,
        effective=0.0,
        share=0.0,
        cubed_share=0.0,
        task_weight=1.0,
    )


def advise(mine: FactorRow, peers: list[FactorRow], periods: dict[int, PeriodFacts]) -> TaskAdvice:
    largest, speeds = peers_of(peers)
    return advise_task(
        mine, periods, largest_capacity=largest, speeds=speeds, quality_window_s=WINDOW_S
    )


def clean(entry_ids: list[int]) -> dict[int, PeriodFacts]:
    return {pid: PeriodFacts(pid, requests=40, rate_limited=0, failed=0) for pid in entry_ids}


def test_failures_dominate_and_the_words_name_the_period_and_numbers() -> None:
    score = formulas.period_score(
        capacity=10_000, consumed=9_000, requests=40, rate_limited=0, failed=5
    )
    assert score is not None
    failing = row("5Fail", scores=[score] * 3 + [1.0] * 9)
    peers = [failing, row("5Best")]
    periods = clean(list(range(889, 901)))
    for pid in (900, 899, 898):
        periods[pid] = PeriodFacts(pid, requests=40, rate_limited=0, failed=5, consumed=9000.0)
    advice = advise(failing, peers, periods)
    top = advice.dominant
    assert top is not None and top.factor == "failures"
    assert "5 of 40 requests failed in period #900" in top.words
    assert "15 of 480 over the last 12 scored periods" in top.words
    assert f"period history to {failing.period_history:.2f}" in top.words
    # Counting the failed requests as served gives back a perfect history.
    assert top.gain == pytest.approx(1.0 / failing.period_history, rel=1e-6)
    assert "failures limited this miner most" in advice.summary.lower()
    assert "miner's log" in top.action


def test_capacity_left_unoffered_dominates() -> None:
    small = row("5Small", capacity=500.0)
    advice = advise(small, [small, row("5Big")], clean(list(range(889, 901))))
    top = advice.dominant
    assert top is not None and top.factor == "capacity"
    assert top.gain == pytest.approx(20.0)
    assert "You announced 500 for this period; the largest on this task is 10,000" in top.words
    assert "Announce more capacity" in top.action


def test_low_quality_dominates() -> None:
    weak = row("5Weak", quality=0.35, checks=37)
    advice = advise(weak, [weak, row("5Best")], clean(list(range(889, 901))))
    top = advice.dominant
    assert top is not None and top.factor == "quality"
    assert top.gain == pytest.approx(1 / 0.35)
    assert "mean(q^1.5) = 0.35 over 37 checks in the last 2.0 h" in top.words


def test_speed_rank_429s_new_miners_and_a_miner_with_nothing_to_fix() -> None:
    slow = row("5Slow", speed=10.0, bonus=-0.25)
    peers = [slow, row("5A", speed=50.0, bonus=0.0), row("5B", speed=90.0)]
    speed = advise(slow, peers, clean(list(range(889, 901))))
    assert speed.dominant is not None and speed.dominant.factor == "speed"
    assert "ranks 3rd of 3: bonus -0.25" in speed.dominant.words
    assert speed.dominant.gain == pytest.approx(1.25 / 0.75)

    score = formulas.period_score(
        capacity=10_000, consumed=400, requests=40, rate_limited=12, failed=0
    )
    limited = row("5Limited", scores=[score or 0.0] + [1.0] * 11)
    periods = clean(list(range(889, 900)))
    periods[900] = PeriodFacts(900, 40, 12, 0, consumed=400.0, capacity=10_000.0)
    advice = advise(limited, [limited], periods)
    assert advice.dominant is not None and advice.dominant.factor == "429s"
    assert "96% of the capacity you announced went unused" in advice.dominant.words

    new = row("5New", scores=[1.0, 1.0, 1.0])
    advice = advise(new, [new], clean([900, 899, 898]))
    assert advice.dominant is not None and advice.dominant.factor == "new miner"
    assert advice.dominant.gain == pytest.approx(4.0) and "(6 more)" in advice.dominant.words

    nothing = row("5Zero", scores=[], capacity=0.0, checks=0, quality=None)  # type: ignore[arg-type]
    advice = advise(nothing, [nothing, row("5B")], {})
    assert all(math.isinf(limit.gain) for limit in advice.limits[:3])

    best = row("5Best")
    advice = advise(best, [best], clean(list(range(889, 901))))
    assert [limit.factor for limit in advice.limits] == ["quality"]  # 0.98: ×1.02
    assert advice_text([advice])[0].startswith("  chat: Quality limited this miner most")
