"""btauth/1 over real HTTP with real sr25519 signatures (uvicorn and granian)."""

from __future__ import annotations

import time

import msgspec

from tests.integration.miner_server.conftest import CHAT_TASK
from tests.support.miner import SignedClient
from tests.support.wallets import make_wallet

CHAT = "/v1/chat/completions"
BODY = msgspec.json.encode(
    {"model": CHAT_TASK, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
)


async def _error(response) -> dict:
    payload = await response.json()
    assert set(payload) == {"error"}
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    return payload["error"]


async def test_valid_signature_is_served(client: SignedClient) -> None:
    async with client.post(CHAT, BODY) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["object"] == "chat.completion"


async def test_replayed_headers_are_refused(client: SignedClient) -> None:
    headers = client.sign(CHAT, BODY)
    async with client.post(CHAT, BODY, headers=headers) as response:
        assert response.status == 200
    async with client.post(CHAT, BODY, headers=headers) as response:
        assert response.status == 401
        error = await _error(response)
        assert error["code"] == "replayed_nonce"
        assert error["type"] == "invalid_request_error"


async def test_tampered_body_is_refused(client: SignedClient) -> None:
    headers = client.sign(CHAT, BODY)
    tampered = BODY.replace(b'"max_tokens":4', b'"max_tokens":5')
    assert tampered != BODY
    async with client.post(CHAT, tampered, headers=headers) as response:
        assert response.status == 401
        assert (await _error(response))["code"] == "invalid_signature"


async def test_signature_for_another_path_is_refused(client: SignedClient) -> None:
    headers = client.sign("/v1/completions", BODY)
    async with client.post(CHAT, BODY, headers=headers) as response:
        assert response.status == 401
        assert (await _error(response))["code"] == "invalid_signature"


async def test_query_string_is_part_of_the_signed_target(client: SignedClient) -> None:
    path = CHAT + "?trace=1"
    async with client.post(path, BODY) as response:
        assert response.status == 200, await response.text()
    headers = client.sign(CHAT, BODY)  # signed without the query string
    async with client.post(path, BODY, headers=headers) as response:
        assert response.status == 401


async def test_stale_nonce_is_refused(client: SignedClient) -> None:
    old = time.time_ns() - 60 * 1_000_000_000
    async with client.post(CHAT, BODY, nonce_ns=old) as response:
        assert response.status == 401
        assert (await _error(response))["code"] == "stale_nonce"


async def test_future_nonce_beyond_skew_is_refused(client: SignedClient) -> None:
    ahead = time.time_ns() + 30 * 1_000_000_000
    async with client.post(CHAT, BODY, nonce_ns=ahead) as response:
        assert response.status == 401
        assert (await _error(response))["code"] == "stale_nonce"


async def test_wrong_receiver_is_refused(client: SignedClient, wallet_root) -> None:
    other = make_wallet(wallet_root, "other-miner").hotkey.ss58_address
    async with client.post(CHAT, BODY, receiver=other) as response:
        assert response.status == 401
        assert (await _error(response))["code"] == "wrong_receiver"


async def test_missing_headers_are_refused(client: SignedClient) -> None:
    async with client.post(CHAT, BODY, headers={}) as response:
        assert response.status == 401
        assert (await _error(response))["code"] == "missing_signature"


async def test_partial_headers_are_refused(client: SignedClient) -> None:
    headers = client.sign(CHAT, BODY)
    del headers["X-Bittensor-Signature"]
    async with client.post(CHAT, BODY, headers=headers) as response:
        assert response.status == 401
        assert (await _error(response))["code"] == "missing_signature"


async def test_signer_that_is_not_the_claimed_hotkey_is_refused(
    client: SignedClient, wallet_root
) -> None:
    headers = client.sign(CHAT, BODY)
    headers["X-Bittensor-Hotkey"] = make_wallet(wallet_root, "impostor").hotkey.ss58_address
    async with client.post(CHAT, BODY, headers=headers) as response:
        assert response.status == 401
        assert (await _error(response))["code"] == "invalid_signature"


async def test_capacity_is_signed_and_answers_per_served_task(
    client: SignedClient, dev_catalog
) -> None:
    tasks = [task.public() for task in dev_catalog.enabled()]
    payload = {"tasks": msgspec.to_builtins(tasks), "period_seconds": 1800}
    async with client.post("/v1/capacity", payload, headers={}) as response:
        assert response.status == 401
    async with client.post("/v1/capacity", payload) as response:
        assert response.status == 200
        from protocol.miner import CapacityResponse

        answer = msgspec.json.decode(await response.read(), type=CapacityResponse)
    chat = dev_catalog.get(CHAT_TASK)
    assert set(answer.capacities) == {CHAT_TASK}
    assert answer.capacities[CHAT_TASK].volume == chat.max_capacity
    assert answer.capacities[CHAT_TASK].concurrency == 8


async def test_healthz_and_models_are_unsigned(client: SignedClient, miner_hotkey: str) -> None:
    async with client.session.get(client.base_url + "/healthz") as response:
        assert response.status == 200
        assert await response.json() == {
            "status": "ok",
            "hotkey": miner_hotkey,
            "tasks": [CHAT_TASK],
            "degraded": [],
        }
    async with client.session.get(client.base_url + "/v1/models") as response:
        listing = await response.json()
        assert [model["id"] for model in listing["data"]] == [CHAT_TASK]
