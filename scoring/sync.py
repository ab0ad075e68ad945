"""Metagraph sync: the chain's neurons into ``nodes``, their changes into ``node_history``.

Runs at the start of every period (the period needs the axons), every
``chain.sync_interval_s`` in between, and on demand (``sn19 scores sync``). When the chain cannot
be reached the sync retries with exponential backoff (``scoring.backoff``) and logs each
failure; callers that cannot wait use ``known()``, the last synced metagraph from the database.

History rows are written when a neuron is registered, deregistered, or changes uid, coldkey,
axon, validator permit, TLS fingerprint, or stake by more than 1 % (stake moves a little every
block with emissions; recording every wiggle would add a row per neuron per sync).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.chain import Chain, Metagraph
from core.db import Database, utcnow
from core.db.tables.scoring import Node, NodeHistory
from protocol.chainfile import Neuron
from scoring.backoff import Backoff, retry_chain, sleep_or_stop

log = logging.getLogger(__name__)

STAKE_CHANGE = 0.01


@dataclass(frozen=True, slots=True)
class SyncReport:
    block: int
    neurons: int
    registered: int
    changed: int
    deregistered: int

    def __str__(self) -> str:
        return (
            f"block {self.block}: {self.neurons} neurons ({self.registered} registered, "
            f"{self.changed} changed, {self.deregistered} deregistered)"
        )


def _stake_moved(old: float, new: float) -> bool:
    return abs(new - old) > STAKE_CHANGE * max(abs(old), 1.0)


def _differs(row: Node, neuron: Neuron) -> bool:
    return (
        row.uid != neuron.uid
        or row.coldkey != neuron.coldkey
        or row.axon != neuron.axon
        or row.validator_permit != neuron.validator_permit
        or row.tls_fingerprint != neuron.tls_fingerprint
        or _stake_moved(row.stake, neuron.stake)
    )


def _history(netuid: int, neuron: Neuron | Node, block: int, event: str) -> NodeHistory:
    return NodeHistory(
        netuid=netuid,
        hotkey=neuron.hotkey,
        uid=neuron.uid,
        coldkey=neuron.coldkey,
        stake=neuron.stake,
        axon=neuron.axon,
        validator_permit=neuron.validator_permit,
        block=block,
        event=event,
        recorded_at=utcnow(),
    )


async def apply_metagraph(session: AsyncSession, metagraph: Metagraph) -> SyncReport:
    """Make ``nodes`` equal to ``metagraph`` and record what changed (one transaction)."""
    netuid, block, now = metagraph.netuid, metagraph.block, utcnow()
    rows = {
        row.hotkey: row
        for row in (await session.scalars(select(Node).where(Node.netuid == netuid))).all()
    }
    incoming = {neuron.hotkey: neuron for neuron in metagraph.neurons}
    gone = [row for hotkey, row in rows.items() if hotkey not in incoming]
    for row in gone:
        session.add(_history(netuid, row, block, "deregistered"))
    if gone:
        await session.execute(
            delete(Node).where(Node.netuid == netuid, Node.hotkey.in_([r.hotkey for r in gone]))
        )
    # uids move when hotkeys (de)register: park moving rows on negative uids first, so the
    # (netuid, uid) unique constraint holds at every statement.
    moving = [row for h, row in rows.items() if h in incoming and row.uid != incoming[h].uid]
    for row in moving:
        row.uid = -1 - row.uid
    await session.flush()
    changed = registered = 0
    for hotkey, neuron in incoming.items():
        existing = rows.get(hotkey)
        if existing is None:
            registered += 1
            session.add(_history(netuid, neuron, block, "registered"))
            session.add(
                Node(
                    netuid=netuid,
                    hotkey=hotkey,
                    uid=neuron.uid,
                    coldkey=neuron.coldkey,
                    stake=neuron.stake,
                    axon=neuron.axon,
                    validator_permit=neuron.validator_permit,
                    tls_fingerprint=neuron.tls_fingerprint,
                    block=block,
                    first_seen_at=now,
                    synced_at=now,
                )
            )
            continue
        row = existing
        if row in moving:
            row.uid = -1 - row.uid  # back to the old value, so the comparison below is honest
        if _differs(row, neuron):
            changed += 1
            session.add(_history(netuid, neuron, block, "changed"))
        row.uid = neuron.uid
        row.coldkey = neuron.coldkey
        row.stake = neuron.stake
        row.axon = neuron.axon
        row.validator_permit = neuron.validator_permit
        row.tls_fingerprint = neuron.tls_fingerprint
        row.block = block
        row.synced_at = now
    await session.flush()
    return SyncReport(block, len(incoming), registered, changed, len(gone))


async def known_metagraph(db: Database, netuid: int) -> Metagraph | None:
    """The metagraph as last synced into the database (None before the first sync)."""
    async with db.read() as session:
        rows = (
            await session.scalars(select(Node).where(Node.netuid == netuid).order_by(Node.uid))
        ).all()
    if not rows:
        return None
    neurons = tuple(
        Neuron(
            uid=row.uid,
            hotkey=row.hotkey,
            coldkey=row.coldkey,
            stake=row.stake,
            axon=row.axon,
            validator_permit=row.validator_permit,
            tls_fingerprint=row.tls_fingerprint,
        )
        for row in rows
    )
    return Metagraph(netuid=netuid, block=max(row.block for row in rows), neurons=neurons)


class MetagraphSync:
    def __init__(self, db: Database, chain: Chain, *, backoff: Backoff) -> None:
        self.db = db
        self.chain = chain
        self.backoff = backoff
        self._lock = asyncio.Lock()

    async def sync_once(self) -> tuple[Metagraph, SyncReport]:
        """Read the chain once and store it; raises ``ChainUnavailable``."""
        async with self._lock:
            metagraph = await self.chain.metagraph()
            async with self.db.transaction() as session:
                report = await apply_metagraph(session, metagraph)
        log.info("metagraph synced: %s", report)
        return metagraph, report

    async def sync(self, stop: asyncio.Event) -> Metagraph | None:
        """Sync, retrying with backoff while the chain is unreachable; None if stopped."""
        result = await retry_chain(
            "metagraph sync", self.sync_once, stop=stop, backoff=self.backoff
        )
        return result[0] if result is not None else None

    async def known(self) -> Metagraph | None:
        return await known_metagraph(self.db, self.chain.netuid)

    async def run(self, stop: asyncio.Event, *, interval_s: float) -> None:
        """Sync every ``interval_s`` until ``stop`` (retrying in between when unreachable)."""
        while not stop.is_set():
            await self.sync(stop)
            if await sleep_or_stop(stop, interval_s):
                return
