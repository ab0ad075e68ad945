"""The weight calculation against hand-computed values, and its edge cases (SPEC §6)."""

from __future__ import annotations

import pytest

from scoring.weights.formula import CheckSample, HistoryEntry, TaskInputs, calculate

UIDS = {"A": 1, "B": 2, "C": 3}


def steady(count: int, score: float | None, consumed: float, quota: float) -> list[HistoryEntry]:
    return [HistoryEntry(100 - age, score, consumed, quota) for age in range(count)]


def two_tasks() -> list[TaskInputs]:
    chat = TaskInputs(
        task="chat",
        weight=0.4,
        capacity={"A": 1000.0, "B": 500.0, "C": 800.0},
        checks={
            # A: q 1, 1 → quality 1; rates 100/1, 200/2 → p30 = 100 (fastest: +0.25)
            "A": [CheckSample(1.0, 100, 1.0), CheckSample(1.0, 200, 2.0)],
            # B: q 0.64 → 0.64^1.5 = 0.512; rate 50 (slowest: −0.25)
            "B": [CheckSample(0.64, 50, 1.0)],
            # C: no checks → quality none → E = 0
        },
        history={
            "A": steady(9, 1.0, 100, 40),  # 9 scored periods → P = 1.0, no new-miner factor
            # B: weights max(10,20)·1 = 20 and max(0,20)·0.5 = 10 → (20·1 + 10·0.5)/30 = 5/6,
            # two scored periods → × 0.25 = 5/24
            "B": [HistoryEntry(9, 1.0, 10, 20), HistoryEntry(8, 0.5, 0, 20)],
        },
    )
    image = TaskInputs(
        task="image",
        weight=0.6,
        capacity={"B": 100.0},
        checks={
            "B": [CheckSample(1.0, 10, 2.0)],  # rate 5: slowest → −0.25
            "A": [CheckSample(0.0, 10, 1.0)],  # a failed check; A is no contender here
        },
        history={"B": steady(9, 0.8, 10, 10)},  # P = 0.8
    )
    return [chat, image]


def test_hand_computed_two_task_calculation() -> None:
    calc = calculate(two_tasks(), UIDS)
    rows = {(row.task, row.hotkey): row for row in calc.factors}
    a, b, c = rows["chat", "A"], rows["chat", "B"], rows["chat", "C"]
    assert (a.quality, a.speed_metric, a.speed_bonus) == (1.0, 100.0, 0.25)
    assert a.period_history == pytest.approx(1.0) and a.periods_scored == 9
    assert a.effective == pytest.approx(1.0 * 1.25 * 1.0 * 1000)  # 1250
    # B's chat quality ignores its image checks (q = 1.0 there): 0.64^1.5 only.
    assert b.quality == pytest.approx(0.512)
    assert b.speed_bonus == -0.25
    assert b.period_history == pytest.approx(5 / 24)
    assert b.effective == pytest.approx(0.512 * 0.75 * (5 / 24) * 500)  # 40
    assert b.effective == pytest.approx(40.0)
    assert (c.quality, c.effective, c.check_count) == (None, 0.0, 0)
    assert a.share == pytest.approx(1250 / 1290) and b.share == pytest.approx(40 / 1290)
    assert a.cubed_share == pytest.approx(1250**3 / (1250**3 + 40**3))
    assert b.cubed_share == pytest.approx(40**3 / (1250**3 + 40**3))

    ib, ia = rows["image", "B"], rows["image", "A"]
    assert ib.effective == pytest.approx(1.0 * 0.75 * 0.8 * 100)  # 60
    assert (ia.quality, ia.speed_bonus, ia.capacity, ia.effective) == (0.0, 0.25, 0.0, 0.0)
    assert ib.cubed_share == 1.0

    weight_a = 0.4 * 1250**3 / (1250**3 + 40**3)
    weight_b = 0.4 * 40**3 / (1250**3 + 40**3) + 0.6
    assert calc.weights["A"] == pytest.approx(weight_a)
    assert calc.weights["B"] == pytest.approx(weight_b)
    assert calc.weights["C"] == 0.0
    assert calc.u16 == {2: 65535, 1: round(weight_a / weight_b * 65535), 3: 0}
    assert a.contribution == pytest.approx(weight_a)


def test_nothing_scored_yet_is_all_zero() -> None:
    no_requests = TaskInputs(
        "chat",
        1.0,
        capacity={"A": 1000.0},
        checks={"A": [CheckSample(1.0, 10, 1.0)]},
        history={"A": steady(12, None, 0, 40)},  # every period without requests: no score
    )
    calc = calculate([no_requests], UIDS)
    (row,) = calc.factors
    assert (row.periods_scored, row.period_history, row.effective) == (0, 0.0, 0.0)
    assert calc.all_zero and calc.u16 == {1: 0}


def test_zero_capacity_and_all_failures_weigh_nothing() -> None:
    tasks = [
        TaskInputs(
            "chat",
            1.0,
            capacity={"A": 0.0, "B": 500.0, "C": 500.0},
            checks={h: [CheckSample(1.0, 10, 1.0)] for h in "ABC"},
            history={
                "A": steady(9, 1.0, 10, 10),
                # B failed every request of every period: score 0, and those periods weigh
                # max(consumed, quota) = their quota, so they are not ignored.
                "B": steady(9, 0.0, 0, 20),
                "C": steady(9, 1.0, 10, 20),
            },
        )
    ]
    calc = calculate(tasks, UIDS)
    rows = {row.hotkey: row for row in calc.factors}
    assert rows["A"].effective == 0.0  # no capacity
    assert rows["B"].period_history == 0.0 and rows["B"].effective == 0.0
    assert rows["C"].cubed_share == 1.0
    assert calc.u16 == {1: 0, 2: 0, 3: 65535}


@pytest.mark.parametrize(("periods", "factor"), [(8, 0.25), (9, 1.0), (1, 0.25)])
def test_new_miner_factor_until_more_than_eight_periods(periods: int, factor: float) -> None:
    tasks = [
        TaskInputs(
            "chat",
            1.0,
            capacity={"A": 10.0},
            checks={"A": [CheckSample(1.0, 1, 1.0)]},
            history={"A": steady(periods, 0.5, 10, 10)},
        )
    ]
    (row,) = calculate(tasks, UIDS).factors
    assert row.period_history == pytest.approx(0.5 * factor)


def test_unregistered_miners_are_explained_but_not_weighted() -> None:
    tasks = [
        TaskInputs(
            "chat",
            1.0,
            capacity={"A": 10.0, "Gone": 10.0},
            checks={h: [CheckSample(1.0, 1, 1.0)] for h in ("A", "Gone")},
            history={h: steady(9, 1.0, 10, 10) for h in ("A", "Gone")},
        )
    ]
    calc = calculate(tasks, {"A": 1})
    assert {row.hotkey for row in calc.factors} == {"A", "Gone"}
    assert calc.weights == {"A": 1.0} and calc.u16 == {1: 65535}


def test_no_tasks_and_no_miners() -> None:
    calc = calculate([], UIDS)
    assert calc.factors == [] and calc.weights == {} and calc.all_zero
    empty = calculate([TaskInputs("chat", 1.0, {}, {}, {})], UIDS)
    assert empty.factors == [] and empty.u16 == {}
