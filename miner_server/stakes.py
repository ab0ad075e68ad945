"""The stake gate: who may use this miner, and with which share (SPEC §2).

The miner reads the metagraph itself (validators are untrusted too):

- ``LocalStakes``: the local network file of `sn19 dev` (``protocol.chainfile``), re-read when
  it changes (checked at most once a second);
- ``ChainStakes``: the real subnet through the bittensor SDK, read at start and refreshed in the
  background every ``refresh_s``; a failed refresh keeps the last good table.

``StakeGate.admit(hotkey)`` refuses (403) a hotkey that is not registered on the subnet or holds
less than the minimum stake, answers 503 while no metagraph has been read yet, and otherwise
returns the validator's **stake share**: its stake over the total stake of every neuron that
passes the gate. The share splits capacity offers (``miner_server.capacity``) and caps how many
of a task's slots one validator may hold at once (``miner_server.state``).

``OpenGate`` (no metagraph configured) lets every signed request through with share 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from miner_server.errors import MetagraphUnavailable, ValidatorRefused
from miner_server.settings import ChainSettings
from protocol.chainfile import ChainFileError, parse_chain_file
from protocol.config import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StakeTable:
    """Stake per registered hotkey at one moment."""

    stakes: dict[str, float]
    loaded_at: float

    def eligible_total(self, min_stake: float) -> float:
        return sum(stake for stake in self.stakes.values() if stake >= min_stake and stake > 0)

    def share(self, hotkey: str, min_stake: float) -> float:
        """The hotkey's share of the eligible stake; 1 when nobody holds any stake."""
        total = self.eligible_total(min_stake)
        if total <= 0:
            return 1.0
        return min(max(self.stakes.get(hotkey, 0.0), 0.0) / total, 1.0)


class StakeSource(Protocol):
    def current(self) -> StakeTable | None:
        """The latest table, or None before the first successful read."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class Gate(Protocol):
    def admit(self, hotkey: str) -> float:
        """The validator's stake share; raises ``ValidatorRefused`` / ``MetagraphUnavailable``."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class OpenGate:
    """No metagraph: every validator with a valid signature is served with share 1."""

    def admit(self, hotkey: str) -> float:
        del hotkey
        return 1.0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class StakeGate:
    def __init__(self, source: StakeSource, *, min_stake: float) -> None:
        self.source = source
        self.min_stake = min_stake

    def admit(self, hotkey: str) -> float:
        table = self.source.current()
        if table is None:
            raise MetagraphUnavailable(
                "This miner has not read the subnet's metagraph yet; retry shortly."
            )
        stake = table.stakes.get(hotkey)
        if stake is None:
            raise ValidatorRefused(
                f"Hotkey {hotkey} is not registered on this subnet.",
                code="validator_not_registered",
            )
        if stake < self.min_stake:
            raise ValidatorRefused(
                f"Hotkey {hotkey} holds {stake:g} stake; this miner requires {self.min_stake:g}.",
                code="insufficient_stake",
            )
        return table.share(hotkey, self.min_stake)

    async def start(self) -> None:
        await self.source.start()

    async def close(self) -> None:
        await self.source.close()


class LocalStakes:
    """The local network file, re-read when its modification time changes."""

    def __init__(self, path: Path, *, check_every_s: float = 1.0) -> None:
        self.path = path
        self.check_every_s = check_every_s
        self._table: StakeTable | None = None
        self._mtime: float | None = None
        self._checked = 0.0

    def current(self) -> StakeTable | None:
        now = time.monotonic()
        if self._table is not None and now - self._checked < self.check_every_s:
            return self._table
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            logger.warning("cannot read the local network file %s: %s", self.path, exc)
            return self._table
        if mtime != self._mtime:
            try:
                neurons = parse_chain_file(self.path.read_text("utf-8"))
            except (OSError, ChainFileError) as exc:
                logger.warning("local network file %s: %s (keeping the last table)", self.path, exc)
                return self._table
            self._mtime = mtime
            self._table = StakeTable({n.hotkey: n.stake for n in neurons}, time.time())
        return self._table

    async def start(self) -> None:
        if self.current() is None:
            logger.warning("the local network file %s is not readable yet", self.path)

    async def close(self) -> None:
        return None


def _stake_of(neuron: Any) -> float:
    """The chain's stake weight of a ``bt.MetagraphNeuron`` (alpha + TAO × tao_weight), the
    number validator permits are ranked on (the validator's ``core.chain`` uses the same)."""
    stake = getattr(neuron, "total_stake", None)
    return float(stake.rao) / 1e9 if stake is not None else 0.0


class ChainStakes:
    """The subnet's metagraph through the bittensor SDK, refreshed in the background."""

    def __init__(self, settings: ChainSettings, *, client: Any = None) -> None:
        self.settings = settings
        self._client = client
        self._table: StakeTable | None = None
        self._task: asyncio.Task[None] | None = None

    def current(self) -> StakeTable | None:
        return self._table

    async def refresh(self) -> bool:
        """Read the metagraph once; False (and the old table kept) when that failed."""
        import bittensor as bt

        try:
            async with asyncio.timeout(self.settings.timeout_s):
                if self._client is None:
                    self._client = await bt.Client(self.settings.network).connect()
                graph = await self._client.subnets.metagraph(
                    self.settings.netuid, commitments=False
                )
        except (bt.BittensorError, OSError, TimeoutError) as exc:
            logger.warning(
                "metagraph refresh from %s failed (%s); keeping the last one",
                self.settings.network,
                exc,
            )
            await self._reset()
            return False
        if graph is None:
            logger.warning(
                "netuid %d does not exist on %s", self.settings.netuid, self.settings.network
            )
            return False
        self._table = StakeTable({str(n.hotkey): _stake_of(n) for n in graph.neurons}, time.time())
        logger.info("metagraph refreshed: %d neurons at block %s", len(graph.neurons), graph.block)
        return True

    async def _reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # the refresher must outlive any SDK surprise
                logger.exception("metagraph refresh failed unexpectedly; keeping the last one")
            wait = self.settings.refresh_s if self._table is not None else 10.0
            await asyncio.sleep(wait)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._reset()


def gate_from_settings(settings: ChainSettings) -> Gate:
    if settings.network == "local":
        if not settings.local_file:
            logger.warning(
                "chain.local_file is not set: the stake gate is OFF and every validator with a "
                "valid signature is served in full. Set chain.network (finney, test) for a real "
                "subnet, or chain.local_file for a local network."
            )
            return OpenGate()
        source: StakeSource = LocalStakes(Path(settings.local_file).expanduser())
    else:
        from bittensor.settings import resolve_endpoint

        try:
            resolve_endpoint(settings.network)
        except ValueError as exc:
            raise ConfigError(f"chain.network: {exc}") from None
        source = ChainStakes(settings)
    return StakeGate(source, min_stake=settings.effective_min_stake)
