"""The bittensor SDK adapter, offline: construction does not connect, the metagraph mapping from
a hand-built ``bt.Metagraph``, what set_weights sends, and error mapping (a fake client)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import bittensor as bt
import pytest

from core.chain import ChainUnavailable, chain_from_settings
from core.chain.subtensor import SubtensorChain, metagraph_from_sdk, weights_intent
from core.settings import Settings
from protocol.config import ConfigError

RAO = 10**9


def neuron(uid: int, hotkey: str, *, stake: float, axon: str | None, permit: bool = False) -> Any:
    zero = bt.Balance.from_rao(0, 19)
    return bt.MetagraphNeuron(
        uid=uid,
        hotkey=hotkey,
        coldkey=f"5Cold{uid}",
        active=True,
        validator_permit=permit,
        last_update=0,
        block_at_registration=0,
        rank=0,
        trust=0,
        consensus=0,
        incentive=0,
        dividends=0,
        pruning_score=0,
        emission=zero,
        alpha_stake=zero,
        tao_stake=bt.Balance.from_rao(0),
        total_stake=bt.Balance.from_rao(int(stake * RAO), 19),
        axon=axon,
        identity=None,
        commitment=None,
    )


def graph(*neurons: Any) -> Any:
    return bt.Metagraph(
        netuid=19,
        mechid=0,
        name="sn19",
        symbol="t",
        block=4242,
        tempo=360,
        last_step=0,
        blocks_since_last_step=0,
        owner_hotkey="",
        owner_coldkey="",
        network_registered_at=0,
        num_uids=len(neurons),
        max_uids=256,
        price=None,
        moving_price=None,
        identity=None,
        neurons=list(neurons),
        commitments={},
        unregistered_commitments={},
        raw={},
    )


class FakeClient:
    def __init__(self) -> None:
        self.connects = 0
        self.closes = 0
        self.executed: list[tuple[Any, Any, dict[str, Any]]] = []
        self.outcome: Any = bt.ExtrinsicResult(True, "ok", extrinsic_id="4243-2")
        self.fail: BaseException | None = None
        self.delay = 0.0
        self.graph = graph(
            neuron(0, "5Val", stake=12_000.5, axon=None, permit=True),
            neuron(1, "5Min", stake=0, axon="203.0.113.9:8091"),
            neuron(2, "5Off", stake=1, axon="0.0.0.0:0"),
        )
        self.storage: dict[str, Any] = {
            "Uids": 0,
            "LastUpdate": [4000, 0, 0],
            "WeightsVersionKey": 61000,
        }

        async def metagraph(netuid: int, *, commitments: bool) -> Any:
            await self._maybe_fail()
            return self.graph if netuid == 19 else None

        async def rate_limit(netuid: int) -> int:
            return 100

        self.subnets = SimpleNamespace(metagraph=metagraph)
        self.hyperparameters = SimpleNamespace(weights_rate_limit=rate_limit)

    async def _maybe_fail(self) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail

    async def connect(self) -> FakeClient:
        self.connects += 1
        return self

    async def close(self) -> None:
        self.closes += 1

    async def block(self) -> int:
        await self._maybe_fail()
        return 4243

    async def query(self, item: Any, params: list[Any]) -> Any:
        await self._maybe_fail()
        return self.storage[item.name]

    async def execute(self, intent: Any, wallet: Any, **kwargs: Any) -> Any:
        self.executed.append((intent, wallet, kwargs))
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def make(client: FakeClient, **kwargs: Any) -> SubtensorChain:
    return SubtensorChain(
        network="finney",
        netuid=19,
        hotkey="5Val",
        wallet="WALLET",
        client_factory=lambda: client,
        **kwargs,
    )


def test_construction_does_not_connect_and_validates_the_network() -> None:
    client = FakeClient()
    chain = make(client)
    assert client.connects == 0
    assert chain.endpoint.startswith("wss://")
    custom = SubtensorChain(network="ws://127.0.0.1:9944", netuid=1, hotkey="5V")
    assert custom.endpoint == "ws://127.0.0.1:9944"
    with pytest.raises(ValueError, match="Unknown network"):
        SubtensorChain(network="mars", netuid=1, hotkey="5V")


def test_chain_from_settings(tmp_path) -> None:
    wallets = str(tmp_path / "wallets")
    settings = Settings.from_env(
        {}, overrides={"chain": {"network": "test", "netuid": 176}, "wallet": {"path": wallets}}
    )
    chain = chain_from_settings(settings, hotkey="5V")
    assert isinstance(chain, SubtensorChain) and (chain.netuid, chain.network) == (176, "test")
    assert chain.wallet.name == "validator"
    bad = Settings.from_env(
        {}, overrides={"chain": {"network": "mars"}, "wallet": {"path": wallets}}
    )
    with pytest.raises(ConfigError, match=r"chain\.network"):
        chain_from_settings(bad, hotkey="5V")


def test_metagraph_mapping_from_a_hand_built_sdk_metagraph() -> None:
    mapped = metagraph_from_sdk(FakeClient().graph)
    assert (mapped.netuid, mapped.block) == (19, 4242)
    val, miner, off = mapped.neurons
    assert (val.uid, val.hotkey, val.coldkey, val.stake, val.axon, val.validator_permit) == (
        0,
        "5Val",
        "5Cold0",
        12_000.5,
        None,
        True,
    )
    assert (miner.axon, miner.axon_url, miner.validator_permit) == (
        "203.0.113.9:8091",
        "http://203.0.113.9:8091",
        False,
    )
    assert off.axon is None  # 0.0.0.0 is not serving


def test_weights_intent_is_what_gets_sent() -> None:
    intent = weights_intent(netuid=19, uids=[3, 1, 2], weights=[65535, 0, 100], version_key=61000)
    assert isinstance(intent, bt.SetWeights)
    assert (intent.netuid, intent.uids, intent.weights, intent.version_key, intent.mechid) == (
        19,
        [3, 2],
        [65535.0, 100.0],
        61000,
        0,
    )
    with pytest.raises(ValueError):
        weights_intent(netuid=19, uids=[1], weights=[], version_key=0)


async def test_reads_and_set_weights_through_the_sdk() -> None:
    client = FakeClient()
    chain = make(client, set_weights_retries=3)
    assert await chain.current_block() == 4243
    assert [n.hotkey for n in (await chain.metagraph()).neurons] == ["5Val", "5Min", "5Off"]
    assert await chain.weights_rate_limit() == 100
    assert await chain.weights_version() == 61000
    assert await chain.last_weights_block() == 4000
    assert client.connects == 1  # one connection, reused
    result = await chain.set_weights(uids=[1, 2], weights=[65535, 30000], version_key=7)
    assert result.success and result.block == 4243 and "4243-2" in result.message
    ((intent, wallet, kwargs),) = client.executed
    assert (intent.uids, intent.weights, intent.version_key, intent.netuid) == (
        [1, 2],
        [65535.0, 30000.0],
        7,
        19,
    )
    assert wallet == "WALLET"
    assert kwargs == {"retries": 3, "wait_for_inclusion": True, "wait_for_finalization": False}
    client.storage["Uids"] = None
    assert await chain.last_weights_block() is None


async def test_refusals_are_results_not_outages() -> None:
    client = FakeClient()
    chain = make(client)
    client.outcome = bt.ChainError(
        "Weights were last set 3 blocks ago", code=bt.ErrorCode.RATE_LIMITED
    )
    refused = await chain.set_weights(uids=[1], weights=[1], version_key=0)
    assert not refused.success and refused.message.startswith("rate_limited:")
    client.outcome = bt.ExtrinsicResult(False, "IncorrectWeightVersionKey")
    failed = await chain.set_weights(uids=[1], weights=[1], version_key=0)
    assert not failed.success and "IncorrectWeightVersionKey" in failed.message
    nothing = await chain.set_weights(uids=[1], weights=[0], version_key=0)
    assert not nothing.success and "every weight is zero" in nothing.message
    unsigned = SubtensorChain(
        network="finney", netuid=19, hotkey="5V", client_factory=lambda: client
    )
    assert not (await unsigned.set_weights(uids=[1], weights=[1], version_key=0)).success


@pytest.mark.parametrize(
    "error",
    [
        bt.RpcConnectionError("all endpoints failed"),
        ConnectionRefusedError(111, "refused"),
        OSError("network unreachable"),
        bt.ChainError("runtime call failed"),
    ],
)
async def test_outages_become_chain_unavailable_and_reconnect(error: BaseException) -> None:
    client = FakeClient()
    chain = make(client)
    client.fail = error
    with pytest.raises(ChainUnavailable, match="finney: reading"):
        await chain.metagraph()
    assert client.closes == 1  # the broken connection was dropped
    client.fail = None
    assert await chain.current_block() == 4243
    assert client.connects == 2


async def test_set_weights_outage_and_timeout() -> None:
    client = FakeClient()
    chain = make(client, timeout_s=0.05)
    client.outcome = bt.RpcConnectionError("dropped")
    with pytest.raises(ChainUnavailable, match="setting weights"):
        await chain.set_weights(uids=[1], weights=[1], version_key=0)
    client.delay = 0.2
    with pytest.raises(ChainUnavailable, match="TimeoutError"):
        await chain.current_block()


async def test_missing_subnet_is_unavailable() -> None:
    client = FakeClient()
    chain = SubtensorChain(network="test", netuid=5, hotkey="5V", client_factory=lambda: client)
    with pytest.raises(ChainUnavailable, match="netuid 5 does not exist"):
        await chain.metagraph()
