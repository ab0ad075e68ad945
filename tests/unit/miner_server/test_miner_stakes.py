"""The stake gate, stake shares, per-validator quotas, the capacity policies, the chain-backed
stake table (with a fake SDK client) and the effective minimum stake."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from types import SimpleNamespace

import bittensor as bt
import msgspec
import pytest

from miner_server.auth import Caller
from miner_server.capacity import StakeShareCapacity, StaticCapacity, TaskOffer, validator_quota
from miner_server.errors import (
    ConcurrencyLimit,
    MetagraphUnavailable,
    ValidatorQuota,
    ValidatorRefused,
)
from miner_server.settings import ChainSettings
from miner_server.stakes import (
    ChainStakes,
    LocalStakes,
    OpenGate,
    StakeGate,
    StakeTable,
    gate_from_settings,
)
from miner_server.state import Limiter
from protocol.chainfile import Neuron, format_chain_file
from protocol.config import ConfigError
from protocol.miner import CapacityRequest


def write(path: Path, stakes: dict[str, float]) -> None:
    path.write_text(
        format_chain_file([Neuron(i, hk, stake=s) for i, (hk, s) in enumerate(stakes.items())])
    )


def test_share_is_over_the_stake_that_passes_the_gate() -> None:
    table = StakeTable({"a": 3000, "b": 1000, "c": 10, "m": 0}, time.time())
    assert table.share("a", 100) == pytest.approx(0.75)
    assert table.share("b", 100) == pytest.approx(0.25)
    assert table.share("a", 0) == pytest.approx(3000 / 4010)
    assert StakeTable({"a": 0, "b": 0}, 0).share("a", 0) == 1.0  # nobody staked: no split


def test_gate_refusals_and_shares(tmp_path: Path) -> None:
    path = tmp_path / "chain.txt"
    write(path, {"a": 3000, "b": 1000, "c": 10})
    gate = StakeGate(LocalStakes(path), min_stake=100)
    assert gate.admit("a") == pytest.approx(0.75)
    with pytest.raises(ValidatorRefused) as low:
        gate.admit("c")
    assert (low.value.status_code, low.value.code) == (403, "insufficient_stake")
    with pytest.raises(ValidatorRefused) as unknown:
        gate.admit("zz")
    assert unknown.value.code == "validator_not_registered"


def test_local_stakes_reread_on_change_and_keep_last_good(tmp_path: Path) -> None:
    path = tmp_path / "chain.txt"
    write(path, {"a": 1})
    source = LocalStakes(path, check_every_s=0)
    assert set(source.current().stakes) == {"a"}
    write(path, {"a": 1, "b": 2})
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert set(source.current().stakes) == {"a", "b"}
    path.write_text("garbage line without axon\n")
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert set(source.current().stakes) == {"a", "b"}  # a broken file keeps the last table


def test_gate_without_a_table_is_503(tmp_path: Path) -> None:
    gate = StakeGate(LocalStakes(tmp_path / "missing.txt"), min_stake=0)
    with pytest.raises(MetagraphUnavailable) as error:
        gate.admit("a")
    assert error.value.status_code == 503 and error.value.headers["retry-after"]


def test_gate_from_settings(tmp_path: Path) -> None:
    assert isinstance(gate_from_settings(ChainSettings()), OpenGate)
    assert OpenGate().admit("anyone") == 1.0
    local = gate_from_settings(ChainSettings(local_file=str(tmp_path / "c.txt")))
    assert isinstance(local, StakeGate) and local.min_stake == 0
    finney = gate_from_settings(ChainSettings(network="finney"))
    assert isinstance(finney, StakeGate) and finney.min_stake == 1000
    assert isinstance(finney.source, ChainStakes)
    assert ChainSettings(network="test").effective_min_stake == 0
    with pytest.raises(ConfigError, match="chain.network"):
        gate_from_settings(ChainSettings(network="mars"))
    assert ChainSettings(network="finney", min_stake=5).effective_min_stake == 5


def test_validator_quota() -> None:
    assert validator_quota(8, 1.0) == 8
    assert validator_quota(8, 0.75) == 6
    assert validator_quota(8, 0.3) == 2
    assert validator_quota(8, 0.01) == 1  # at least one
    assert validator_quota(1, 0.5) == 1
    assert validator_quota(4, 0.25) == 1


def test_limiter_per_validator_then_task() -> None:
    limiter = Limiter("t", 4)
    small = Caller("small", 1, share=0.25)
    big = Caller("big", 1, share=0.75)
    slot = limiter.acquire(small)
    with pytest.raises(ValidatorQuota) as quota:
        limiter.acquire(small)
    assert quota.value.status_code == 429 and quota.value.code == "validator_quota"
    bigs = [limiter.acquire(big) for _ in range(3)]
    with pytest.raises(ConcurrencyLimit):
        limiter.acquire(big)
    slot.release()
    slot.release()  # idempotent
    assert limiter.by_validator == {"big": 3}
    limiter.acquire(small)
    for held in bigs:
        held.release()
    assert limiter.by_validator == {"small": 1} and limiter.in_flight == 1


def test_capacity_policies(dev_catalog) -> None:
    chat = dev_catalog.get("sn19-tiny-chat")
    offers = {chat.id: TaskOffer(chat, 100_000, 8)}
    request = CapacityRequest(tasks=[task.public() for task in dev_catalog.enabled()])
    caller = Caller("v", 1, share=0.25)
    split = StakeShareCapacity(offers).offer(caller, request).capacities[chat.id]
    assert (split.volume, split.concurrency) == (25_000, 2)
    full = StaticCapacity(offers).offer(caller, request).capacities[chat.id]
    assert (full.volume, full.concurrency) == (100_000, 8)
    smaller = msgspec.structs.replace(chat.public(), max_capacity=1000)
    clamped = StakeShareCapacity(offers).offer(caller, CapacityRequest(tasks=[smaller]))
    assert clamped.capacities[chat.id].volume == 1000


def _neuron(hotkey: str, rao: int) -> SimpleNamespace:
    return SimpleNamespace(hotkey=hotkey, total_stake=bt.Balance.from_rao(rao, 19))


class FakeSubnets:
    def __init__(self) -> None:
        self.fail = False
        self.calls = 0

    async def metagraph(self, netuid: int, *, commitments: bool) -> SimpleNamespace:
        self.calls += 1
        assert netuid == 19 and commitments is False
        if self.fail:
            raise bt.RpcConnectionError("endpoint unreachable")
        return SimpleNamespace(
            block=100, neurons=[_neuron("a", 2_000 * 10**9), _neuron("b", 5 * 10**8)]
        )


async def test_chain_stakes_refresh_and_keep_the_last_table_on_failure() -> None:
    subnets = FakeSubnets()
    client = SimpleNamespace(subnets=subnets, close=lambda: asyncio.sleep(0))
    source = ChainStakes(ChainSettings(network="finney"), client=client)
    assert source.current() is None
    assert await source.refresh()
    assert source.current().stakes == {"a": 2000.0, "b": 0.5}
    gate = StakeGate(source, min_stake=1000)
    assert gate.admit("a") == 1.0
    with pytest.raises(ValidatorRefused):
        gate.admit("b")
    subnets.fail = True
    source._client = client
    assert not await source.refresh()
    assert source.current().stakes == {"a": 2000.0, "b": 0.5}
