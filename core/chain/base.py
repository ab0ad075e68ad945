"""The chain interface: what the validator needs from Bittensor, nothing more.

Two implementations: ``LocalChain`` (a file-backed network for `sn19 dev` and the tests) and
``SubtensorChain`` (the `bittensor` SDK against finney/test/a custom endpoint).
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from protocol.chainfile import Neuron


class ChainUnavailable(RuntimeError):
    """The chain could not be reached or answered an error; callers retry with backoff."""


class Metagraph(msgspec.Struct, frozen=True):
    netuid: int
    block: int
    neurons: tuple[Neuron, ...]

    def by_hotkey(self, hotkey: str) -> Neuron | None:
        for neuron in self.neurons:
            if neuron.hotkey == hotkey:
                return neuron
        return None

    @property
    def total_stake(self) -> float:
        return sum(neuron.stake for neuron in self.neurons)


class WeightsResult(msgspec.Struct, frozen=True):
    success: bool
    message: str
    block: int


class Chain(Protocol):
    netuid: int

    async def current_block(self) -> int: ...

    async def metagraph(self) -> Metagraph: ...

    async def set_weights(
        self, *, uids: list[int], weights: list[int], version_key: int
    ) -> WeightsResult:
        """Set this validator's weights (u16 values aligned with ``uids``)."""

    async def close(self) -> None: ...
