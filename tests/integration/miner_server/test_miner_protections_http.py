"""The stake gate, per-validator quotas, the stake-share capacity and receipts, over real HTTP
with real sr25519 signatures and a local network file as the metagraph."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import bittensor as bt
import msgspec
import pytest

from core.miners.receipts import verify_json, verify_stream
from inference.instant import InstantTextEngine
from protocol.chainfile import Neuron, format_chain_file
from protocol.miner import RECEIPT_HEADER, CapacityResponse
from tests.integration.miner_server.conftest import CHAT_TASK, start_instant_miner
from tests.support.miner import SignedClient
from tests.support.wallets import make_wallet

CHAT = "/v1/chat/completions"
BODY = {"model": CHAT_TASK, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


class Network:
    def __init__(self, root: Path, tmp: Path) -> None:
        self.big = make_wallet(root, "val-big")  # 3000 stake: share 0.75
        self.small = make_wallet(root, "val-small")  # 1000 stake: share 0.25
        self.poor = make_wallet(root, "val-poor")  # 10 stake: under the minimum
        self.stranger = make_wallet(root, "val-stranger")  # not registered
        self.miner = make_wallet(root, "miner")
        self.path = tmp / "chain.txt"
        self.path.write_text(
            format_chain_file(
                [
                    Neuron(0, self.big.hotkey.ss58_address, stake=3000, validator_permit=True),
                    Neuron(1, self.small.hotkey.ss58_address, stake=1000, validator_permit=True),
                    Neuron(2, self.poor.hotkey.ss58_address, stake=10),
                    Neuron(3, self.miner.hotkey.ss58_address, axon="127.0.0.1:1"),
                ]
            )
        )

    def chain(self) -> dict:
        return {"network": "local", "local_file": str(self.path), "min_stake": 100}


@pytest.fixture
def network(wallet_root: Path, tmp_path: Path) -> Network:
    return Network(wallet_root, tmp_path)


def client_for(session, url: str, wallet: bt.Wallet, miner: str) -> SignedClient:
    return SignedClient(session, url, wallet.hotkey, miner)


async def _error(response) -> dict:
    return (await response.json())["error"]


async def test_stake_gate_refuses_unregistered_and_low_stake(
    wallet_root: Path, network: Network
) -> None:
    miner = network.miner.hotkey.ss58_address
    started = await start_instant_miner(wallet_root, chain=network.chain())
    async with started as url, aiohttp.ClientSession() as session:
        stranger = client_for(session, url, network.stranger, miner)
        async with stranger.post(CHAT, BODY) as response:
            assert response.status == 403
            error = await _error(response)
            assert error["code"] == "validator_not_registered"
            assert error["type"] == "permission_error"
        poor = client_for(session, url, network.poor, miner)
        async with poor.post(CHAT, BODY) as response:
            assert response.status == 403
            assert (await _error(response))["code"] == "insufficient_stake"
        async with poor.post("/v1/capacity", {"tasks": []}) as response:
            assert response.status == 403  # the gate covers every signed route
        big = client_for(session, url, network.big, miner)
        async with big.post(CHAT, BODY) as response:
            assert response.status == 200, await response.text()


async def test_a_validator_over_its_share_gets_429_while_another_gets_through(
    wallet_root: Path, network: Network
) -> None:
    miner = network.miner.hotkey.ss58_address
    engine = InstantTextEngine(length=200, delay_s=0.01)
    started = await start_instant_miner(
        wallet_root, engine, chain=network.chain(), task={CHAT_TASK: {"concurrency": 4}}
    )
    async with started as url, aiohttp.ClientSession() as session:
        small = client_for(session, url, network.small, miner)
        big = client_for(session, url, network.big, miner)
        long = {**BODY, "max_tokens": 200, "stream": True}
        async with small.post(CHAT, long) as first:  # the small validator's one slot (4 × 0.25)
            assert first.status == 200
            async with small.post(CHAT, BODY) as second:
                assert second.status == 429
                assert second.headers["Retry-After"] == "1"
                assert (await _error(second))["code"] == "validator_quota"
            async with big.post(CHAT, BODY) as other:
                assert other.status == 200, await other.text()
            await first.read()
        async with small.post(CHAT, BODY) as again:  # the slot came back
            assert again.status == 200


async def test_capacity_is_split_by_stake_share(
    wallet_root: Path, network: Network, dev_catalog
) -> None:
    miner = network.miner.hotkey.ss58_address
    started = await start_instant_miner(
        wallet_root,
        chain=network.chain(),
        task={CHAT_TASK: {"concurrency": 8, "capacity": 100_000}},
    )
    tasks = msgspec.to_builtins([task.public() for task in dev_catalog.enabled()])
    async with started as url, aiohttp.ClientSession() as session:
        offers = {}
        for name, wallet in (("big", network.big), ("small", network.small)):
            signed = client_for(session, url, wallet, miner)
            async with signed.post("/v1/capacity", {"tasks": tasks}) as response:
                assert response.status == 200
                body = await response.read()
                nonce = signed_nonce(response)
                assert verify_json(
                    response.headers[RECEIPT_HEADER],
                    body,
                    nonce=nonce,
                    validator=wallet.hotkey.ss58_address,
                    miner=miner,
                )
            offers[name] = msgspec.json.decode(body, type=CapacityResponse).capacities[CHAT_TASK]
    assert (offers["big"].volume, offers["big"].concurrency) == (75_000, 6)
    assert (offers["small"].volume, offers["small"].concurrency) == (25_000, 2)


def signed_nonce(response) -> str:
    return response.request_info.headers["X-Bittensor-Nonce"]


async def test_receipts_verify_for_json_and_streams_and_fail_when_altered(
    wallet_root: Path, network: Network
) -> None:
    miner = network.miner.hotkey.ss58_address
    validator = network.big.hotkey.ss58_address
    started = await start_instant_miner(wallet_root, chain=network.chain())
    async with started as url, aiohttp.ClientSession() as session:
        signed = client_for(session, url, network.big, miner)
        async with signed.post(CHAT, BODY) as response:
            assert response.status == 200
            body = await response.read()
            receipt = response.headers[RECEIPT_HEADER]
            nonce = signed_nonce(response)
        async with signed.post(CHAT, {**BODY, "stream": True}) as response:
            assert response.status == 200
            stream = await response.read()
            stream_nonce = signed_nonce(response)
    who = {"validator": validator, "miner": miner}
    assert verify_json(receipt, body, nonce=nonce, **who)
    altered = body.replace(b"Hello", b"Jello", 1)
    assert altered != body
    assert not verify_json(receipt, altered, nonce=nonce, **who)
    assert not verify_json(receipt, body, nonce=int(nonce) + 1, **who)  # another request
    assert not verify_json(receipt, body, nonce=nonce, validator=miner, miner=miner)

    assert stream.rstrip().splitlines()[-1].startswith(b": receipt ")
    assert b"data: [DONE]" in stream
    assert verify_stream(stream, nonce=stream_nonce, **who)
    for position in (10, len(stream) // 2, stream.index(b"[DONE]")):
        flipped = bytearray(stream)
        flipped[position] ^= 0x01
        assert not verify_stream(bytes(flipped), nonce=stream_nonce, **who)
    without = stream[: stream.rindex(b": receipt ")]
    assert not verify_stream(without, nonce=stream_nonce, **who)


async def test_metagraph_changes_are_picked_up(wallet_root: Path, network: Network) -> None:
    miner = network.miner.hotkey.ss58_address
    started = await start_instant_miner(wallet_root, chain=network.chain())
    async with started as url, aiohttp.ClientSession() as session:
        stranger = client_for(session, url, network.stranger, miner)
        async with stranger.post(CHAT, BODY) as response:
            assert response.status == 403
        with network.path.open("a") as handle:
            handle.write(f"{network.stranger.hotkey.ss58_address} - stake=500\n")
        await asyncio.sleep(1.2)  # the file is re-checked at most once a second
        async with stranger.post(CHAT, BODY) as response:
            assert response.status == 200, await response.text()
