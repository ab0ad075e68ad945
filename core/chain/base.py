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
    """Every method raises ``ChainUnavailable`` when the chain cannot be reached; a refusal by
    the chain itself (rate limit, not registered) is a ``WeightsResult`` with success False."""

    netuid: int

    async def current_block(self) -> int: ...

    async def metagraph(self) -> Metagraph: ...

    async def weights_rate_limit(self) -> int:
        """Blocks the chain requires between two weight settings of one hotkey."""

    async def last_weights_block(self) -> int | None:
        """The block at which this validator's weights were last set (None: never)."""

    async def weights_version(self) -> int:
        """The smallest ``version_key`` the subnet accepts with weights."""

    async def set_weights(
        self, *, uids: list[int], weights: list[int], version_key: int
    ) -> WeightsResult:
        """Set this validator's weights (u16 values aligned with ``uids``)."""

    async def close(self) -> None: ...
