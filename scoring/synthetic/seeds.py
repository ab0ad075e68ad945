"""Seeds reserved to this validator (SPEC §6).

Every synthetic request carries a seed from ``[uid·2³², (uid+1)·2³²)``, with ``uid`` this
validator's uid on the subnet: ``seed = uid × 2**32 + a random 32-bit number``. A miner that
relays one validator's query through another validator's public API (to be paid twice for one
answer, or to answer with a cached result) gets a seed outside the second validator's range,
which that validator can tell. The ranges of uids 0..65535 are disjoint and fit well inside the
63-bit seeds the API accepts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SPAN = 2**32


@dataclass(frozen=True, slots=True)
class SeedRange:
    uid: int

    def __post_init__(self) -> None:
        if not 0 <= self.uid < 2**16:
            raise ValueError(f"validator uid must be in 0..65535, got {self.uid}")

    @property
    def low(self) -> int:
        return self.uid * SPAN

    @property
    def high(self) -> int:
        """One past the last seed of the range."""
        return (self.uid + 1) * SPAN

    def draw(self, rng: random.Random) -> int:
        return self.low + rng.getrandbits(32)

    def owns(self, seed: int) -> bool:
        return self.low <= seed < self.high

    @staticmethod
    def owner(seed: int) -> int:
        """The uid whose range holds ``seed``."""
        return seed // SPAN
