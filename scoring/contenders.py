"""Contenders of a period, from the miners' capacity answers (pure; SPEC §6).

One contender per (miner, enabled task it answered for): the announced volume clamped to
``[0, max_capacity]``, the announced concurrency, a quota multiplier ``m`` drawn per contender
(0.04 / 0.08 / 0.12 / 0.8 with p .5 / .4 / .095 / .005) and the test quota
``capacity × m × quota_scale``. A contender with no capacity or no concurrency is still
recorded (its period score will be None) but gets no route.
"""

from __future__ import annotations

import random

import msgspec

from protocol.catalog import Catalog
from scoring import formulas
from scoring.discovery import CapacityAnswer
from scoring.routes import MinerRoute


class ContenderPlan(msgspec.Struct, frozen=True):
    task: str
    hotkey: str
    uid: int
    url: str
    announced: float
    capacity: float
    concurrency: int
    quota_multiplier: float
    quota: float

    @property
    def routable(self) -> bool:
        return self.capacity > 0 and self.concurrency > 0


class ContenderView(msgspec.Struct, frozen=True):
    """A contender of the open period, as stored."""

    id: int
    task: str
    hotkey: str
    uid: int
    url: str
    capacity: float
    concurrency: int
    quota_multiplier: float
    quota: float

    @property
    def routable(self) -> bool:
        return self.capacity > 0 and self.concurrency > 0


class PeriodView(msgspec.Struct, frozen=True):
    id: int
    started_at: float
    ends_at: float
    period_s: float
    seed: int
    contenders: tuple[ContenderView, ...]

    def contender(self, task: str, hotkey: str) -> ContenderView | None:
        for contender in self.contenders:
            if contender.task == task and contender.hotkey == hotkey:
                return contender
        return None


def plan_contenders(
    answers: list[CapacityAnswer],
    catalog: Catalog,
    *,
    rng: random.Random,
    quota_scale: float = 1.0,
) -> list[ContenderPlan]:
    plans: list[ContenderPlan] = []
    for answer in answers:
        if answer.response is None or answer.neuron.axon_url is None:
            continue
        for task_id in sorted(answer.response.capacities):
            task = catalog.get(task_id)
            if task is None:
                continue
            offer = answer.response.capacities[task_id]
            capacity = formulas.clamp_capacity(offer.volume, task.max_capacity)
            multiplier = formulas.draw_quota_multiplier(rng)
            plans.append(
                ContenderPlan(
                    task=task_id,
                    hotkey=answer.neuron.hotkey,
                    uid=answer.neuron.uid,
                    url=answer.neuron.axon_url,
                    announced=offer.volume,
                    capacity=capacity,
                    concurrency=offer.concurrency,
                    quota_multiplier=multiplier,
                    quota=formulas.quota_volume(capacity, multiplier) * max(quota_scale, 0.0),
                )
            )
    return plans


def routes_for(
    period: PeriodView, catalog: Catalog, quality: dict[tuple[str, str], float]
) -> dict[str, list[MinerRoute]]:
    """The routing table of a period: every routable contender, per enabled task."""
    routes: dict[str, list[MinerRoute]] = {task.id: [] for task in catalog.enabled()}
    for contender in period.contenders:
        if not contender.routable or contender.task not in routes:
            continue
        routes[contender.task].append(
            MinerRoute(
                task=contender.task,
                hotkey=contender.hotkey,
                uid=contender.uid,
                url=contender.url,
                concurrency=contender.concurrency,
                volume=contender.capacity,
                period_start=period.started_at,
                quality=quality.get((contender.task, contender.hotkey), 1.0),
                period_id=period.id,
                period_end=period.ends_at,
            )
        )
    return routes
