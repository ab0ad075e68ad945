"""Metagraph sync into nodes/node_history (SQLite and PostgreSQL), and surviving a chain that
cannot be reached (the local chain's `.down` file): retries with backoff, clear logs, no crash."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy import select

from core.chain import LocalChain, Metagraph
from core.db import Database
from core.db.tables.scoring import Node, NodeHistory
from protocol.chainfile import Neuron, format_chain_file
from scoring.backoff import Backoff
from scoring.sync import MetagraphSync, apply_metagraph, known_metagraph


def graph(block: int, *neurons: Neuron) -> Metagraph:
    return Metagraph(netuid=19, block=block, neurons=neurons)


async def nodes(db: Database) -> dict[str, Node]:
    async with db.read() as session:
        return {row.hotkey: row for row in (await session.scalars(select(Node))).all()}


async def history(db: Database) -> list[tuple[str, str, int]]:
    async with db.read() as session:
        rows = (await session.scalars(select(NodeHistory).order_by(NodeHistory.id))).all()
        return [(row.hotkey, row.event, row.uid) for row in rows]


async def apply(db: Database, metagraph: Metagraph) -> str:
    async with db.transaction() as session:
        return str(await apply_metagraph(session, metagraph))


async def test_registered_changed_and_deregistered(scoring_db: Database) -> None:
    a = Neuron(0, "5A", coldkey="5CA", stake=100, validator_permit=True)
    b = Neuron(1, "5B", axon="10.0.0.1:8091")
    c = Neuron(2, "5C", axon="10.0.0.2:8091")
    report = await apply(scoring_db, graph(10, a, b, c))
    assert "3 registered" in report
    assert {h: (n.uid, n.axon, n.stake) for h, n in (await nodes(scoring_db)).items()} == {
        "5A": (0, None, 100),
        "5B": (1, "10.0.0.1:8091", 0),
        "5C": (2, "10.0.0.2:8091", 0),
    }
    # Stake drifting by under 1 % is not a change; a new uid and axon are. 5C leaves, 5D and 5E
    # register on uids 1 and 2 (5B's old uid among them), 5B moves to uid 3, in one sync.
    a2 = Neuron(0, "5A", coldkey="5CA", stake=100.5, validator_permit=True)
    b2 = Neuron(3, "5B", axon="10.0.0.9:8091")
    d = Neuron(1, "5D", axon="10.0.0.4:8091")
    e = Neuron(2, "5E")
    report = await apply(scoring_db, graph(20, a2, d, e, b2))
    assert "2 registered, 1 changed, 1 deregistered" in report
    rows = await nodes(scoring_db)
    assert {h: n.uid for h, n in rows.items()} == {"5A": 0, "5D": 1, "5E": 2, "5B": 3}
    assert rows["5A"].stake == 100.5 and rows["5A"].block == 20
    assert rows["5B"].axon == "10.0.0.9:8091"
    assert await history(scoring_db) == [
        ("5A", "registered", 0),
        ("5B", "registered", 1),
        ("5C", "registered", 2),
        ("5C", "deregistered", 2),
        ("5D", "registered", 1),
        ("5E", "registered", 2),
        ("5B", "changed", 3),
    ]
    known = await known_metagraph(scoring_db, 19)
    assert known is not None and known.block == 20
    assert [n.hotkey for n in known.neurons] == ["5A", "5D", "5E", "5B"]


async def test_sync_survives_an_unreachable_chain(
    scoring_db: Database, tmp_path: Path, caplog
) -> None:
    path = tmp_path / "chain.txt"
    path.write_text(format_chain_file([Neuron(0, "5V", stake=1, validator_permit=True)]))
    chain = LocalChain(path, hotkey="5V", block_time_s=0.01)
    chain.down_path.touch()
    syncer = MetagraphSync(scoring_db, chain, backoff=Backoff(initial_s=0.02, max_s=0.1))
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="scoring")
    task = asyncio.ensure_future(syncer.sync(stop))
    await asyncio.sleep(0.4)
    assert not task.done()  # still retrying, not crashed
    failures = [r.getMessage() for r in caplog.records if "chain unreachable" in r.getMessage()]
    assert len(failures) >= 3
    assert "metagraph sync: chain unreachable (attempt 1)" in failures[0]
    assert "local chain is down" in failures[0] and "retrying in" in failures[0]
    assert await syncer.known() is None
    chain.down_path.unlink()
    metagraph = await asyncio.wait_for(task, 5)
    assert metagraph is not None and metagraph.by_hotkey("5V") is not None
    assert set(await nodes(scoring_db)) == {"5V"}


async def test_sync_stops_cleanly_while_the_chain_is_down(
    scoring_db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "chain.txt"
    path.write_text(format_chain_file([Neuron(0, "5V")]))
    chain = LocalChain(path, hotkey="5V")
    chain.down_path.touch()
    syncer = MetagraphSync(scoring_db, chain, backoff=Backoff(initial_s=0.05, max_s=0.05))
    stop = asyncio.Event()
    task = asyncio.ensure_future(syncer.run(stop, interval_s=0.05))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, 2)
