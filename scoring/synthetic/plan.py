"""When to send a contender's synthetic requests (SPEC §6), as pure functions.

Each contender gets its own schedule, so each receives its own test quota whatever its size:

- ``request_count``: ``ceil(quota / volume_per_request)`` requests (at least one when the quota is
  positive, so a small miner is still tested);
- ``slot_times``: request ``i`` (0-based) is due at ``start + (i + 1)·Δ + δᵢ`` with
  ``Δ = period / (N + 1)`` and ``δᵢ`` uniform in ``±jitter·Δ/2``, drawn from a seed derived from
  the period's seed and the contender, so any leader computes the same times;
- organic volume served by the contender counts toward its quota: of the slots due so far,
  ``floor(organic volume / volume_per_request)`` are covered and need no synthetic request
  (``needed``). The claim of a slot is atomic in Redis (``scoring.synthetic.claims``), so two
  processes can never send the same slot.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random


def request_count(quota: float, volume_per_request: float) -> int:
    """Synthetic requests that carry ``quota`` volume (0 for no quota)."""
    if quota <= 0 or volume_per_request <= 0 or not math.isfinite(quota):
        return 0
    return max(1, math.ceil(quota / volume_per_request - 1e-9))


def contender_seed(period_seed: int, task: str, hotkey: str) -> int:
    digest = hashlib.sha256(f"{period_seed}:{task}:{hotkey}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def slot_times(
    *, start: float, period_s: float, count: int, jitter: float, seed: int
) -> list[float]:
    """Due times of ``count`` requests spread evenly over the period (sorted)."""
    if count <= 0:
        return []
    spacing = period_s / (count + 1)
    rng = random.Random(seed)
    times = [
        start + (index + 1) * spacing + (rng.random() - 0.5) * jitter * spacing
        for index in range(count)
    ]
    return sorted(times)


def due_count(times: list[float], now: float) -> int:
    """How many of the (sorted) slots are due at ``now``."""
    return bisect.bisect_right(times, now)


def covered(organic_volume: float, volume_per_request: float) -> int:
    """Slots made unnecessary by organic traffic the contender served."""
    if volume_per_request <= 0 or organic_volume <= 0:
        return 0
    return math.floor(organic_volume / volume_per_request + 1e-9)


def needed(due: int, organic_volume: float, volume_per_request: float) -> int:
    """Synthetic requests that should have been sent by now."""
    return max(0, due - covered(organic_volume, volume_per_request))
