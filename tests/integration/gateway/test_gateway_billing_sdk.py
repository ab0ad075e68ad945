"""Billing as the official openai SDK sees it: database keys and their allowlists, 402 that the SDK
does not retry, revocation, the cost/balance/rate-limit headers, and ``/v1/billing/*``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from billing import Billing
from billing.components import open_billing
from billing.costs import chat_cost
from billing.money import MICRO
from protocol.catalog import resolve_catalog
from tests.integration.gateway.conftest import (
    CHAT,
    EMBED,
    IMAGE,
    Stack,
    billing_database,
    fast_engines,
    stack,
)
from tests.support.stripe_stub import StripeStub, event, payload_of, sign

MESSAGES = [{"role": "user", "content": "Hi!"}]
RATE_HEADERS = {
    f"x-ratelimit-{what}-{unit}"
    for what in ("limit", "remaining", "reset")
    for unit in ("requests", "tokens")
}
WEBHOOK_SECRET = "whsec_gateway_test"


@pytest.fixture(scope="module")
async def stripe_stub() -> AsyncIterator[StripeStub]:
    stub = StripeStub()
    await stub.start()
    yield stub
    await stub.stop()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def billed(
    request: pytest.FixtureRequest,
    wallet_root: Path,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    stripe_stub: StripeStub,
) -> AsyncIterator[tuple[Stack, Billing]]:
    """A billing-on stack with Stripe (the local stub), and billing on the same database and
    Redis for the test's own account and key operations (they notify the gateway)."""
    database = billing_database(request, request.param, tmp_path_factory.mktemp("db"))
    stripe = {
        "stripe_api_key": "sk_test_dummy",
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_api_base": stripe_stub.url,
    }
    async with stack(
        wallet_root,
        redis_url,
        miners={"b1": fast_engines(), "b2": fast_engines()},
        billing_db=database,
        billing=stripe,
    ) as running:
        assert running.settings is not None
        async with open_billing(running.settings) as billing:
            yield running, billing


async def new_key(billing: Billing, credits: int = 10 * MICRO, **fields: Any) -> tuple[int, str]:
    account = await billing.accounts.create(f"sdk-{time.monotonic_ns()}")
    if credits:
        await billing.accounts.grant(account.id, credits, actor="test", reason="test")
    created = await billing.keys.create(account.id, "sdk test", **fields)
    return account.id, created.secret


async def test_cost_balance_and_rate_limit_headers(billed: tuple[Stack, Billing]) -> None:
    running, billing = billed
    account_id, key = await new_key(billing, rpm_limit=100, tpm_limit=100_000)
    client = running.sdk(key)
    raw = await client.chat.completions.with_raw_response.create(
        model=CHAT, messages=MESSAGES, max_tokens=8
    )
    completion = raw.parse()
    usage = completion.usage
    assert usage is not None and usage.completion_tokens == 8
    task = resolve_catalog("dev").get(CHAT)
    assert task is not None
    cost = chat_cost(task.price, usage.prompt_tokens, usage.completion_tokens)
    assert raw.headers["x-sn19-cost"] == f"{cost / MICRO:.6f}"
    assert raw.headers["x-sn19-balance"] == f"{(10 * MICRO - cost) / MICRO:.6f}"
    assert set(raw.headers) >= RATE_HEADERS
    assert raw.headers["x-ratelimit-limit-requests"] == "100"
    assert raw.headers["x-ratelimit-remaining-requests"] == "99"
    assert raw.headers["x-ratelimit-limit-tokens"] == "100000"

    # Streams: the headers leave before the cost is known: the hold and the balance after it.
    raw_stream = await client.chat.completions.with_raw_response.create(
        model=CHAT, messages=MESSAGES, max_tokens=8, stream=True
    )
    assert {"x-sn19-hold", "x-sn19-balance"} | RATE_HEADERS <= set(raw_stream.headers)
    chunks = [chunk async for chunk in raw_stream.parse()]
    assert chunks
    raw_embed = await client.embeddings.with_raw_response.create(model=EMBED, input="hello")
    assert float(raw_embed.headers["x-sn19-cost"]) > 0 and set(raw_embed.headers) >= RATE_HEADERS
    raw_image = await client.images.with_raw_response.generate(
        model=IMAGE, prompt="a cat", n=2, size="64x64", extra_body={"steps": 3}
    )
    assert raw_image.headers["x-sn19-cost"] == f"{2 * 3 * task_price_step() / MICRO:.6f}"

    async def settled() -> bool:
        return (await billing.accounts.balance(account_id)).held == 0

    for _ in range(100):
        if await settled():
            break
        await asyncio.sleep(0.05)
    balance = await billing.accounts.balance(account_id)
    assert balance.held == 0 and balance.available < 10 * MICRO - cost
    assert (await billing.accounts.verify([account_id])).ok


def task_price_step() -> int:
    task = resolve_catalog("dev").get(IMAGE)
    assert task is not None
    return task.price.per_step


async def test_model_outside_the_allowlist_is_permission_denied(
    billed: tuple[Stack, Billing],
) -> None:
    running, billing = billed
    _, key = await new_key(billing, allowed_models=[CHAT])
    client = running.sdk(key)
    await client.chat.completions.create(model=CHAT, messages=MESSAGES, max_tokens=2)
    with pytest.raises(openai.PermissionDeniedError) as denied:
        await client.embeddings.create(model=EMBED, input="hello")
    assert denied.value.body["code"] == "model_not_allowed"
    assert denied.value.body["param"] == "model"
    with pytest.raises(openai.NotFoundError):  # the gateway's 404 comes before the allowlist
        await client.embeddings.create(model="no-such-model", input="hello")


async def test_out_of_credits_is_402_and_not_retried(billed: tuple[Stack, Billing]) -> None:
    running, billing = billed
    _, key = await new_key(billing, credits=0)
    client = running.sdk(key, max_retries=3)
    before = running.counts["/v1/chat/completions"]
    with pytest.raises(openai.APIStatusError) as refused:
        await client.chat.completions.create(model=CHAT, messages=MESSAGES)
    assert refused.value.status_code == 402
    assert refused.value.body["code"] == "insufficient_quota"
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert set(refused.value.response.headers) >= RATE_HEADERS
    assert running.counts["/v1/chat/completions"] - before == 1  # the SDK did not retry
    with pytest.raises(openai.APIStatusError) as streamed:
        await client.chat.completions.create(model=CHAT, messages=MESSAGES, stream=True)
    assert streamed.value.status_code == 402
    assert running.counts["/v1/chat/completions"] - before == 2


async def test_revoked_key_is_refused_within_seconds(billed: tuple[Stack, Billing]) -> None:
    running, billing = billed
    _, key = await new_key(billing)
    client = running.sdk(key)
    await client.models.list()  # cached by the gateway now
    await client.chat.completions.create(model=CHAT, messages=MESSAGES, max_tokens=2)
    ctx = await billing.authenticator.authenticate(key)
    await billing.keys.revoke(ctx.key_id)
    revoked_at = time.monotonic()
    while True:
        try:
            await client.chat.completions.create(model=CHAT, messages=MESSAGES, max_tokens=2)
        except openai.AuthenticationError as exc:
            assert "revoked" in str(exc)
            break
        assert time.monotonic() - revoked_at < 6, "the revoked key still works"
        await asyncio.sleep(0.05)
    # The invalidation reaches the gateway at once; the in-process TTL bounds it anyway.
    assert time.monotonic() - revoked_at < 6


async def _get(running: Stack, path: str, key: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(running.gateway_url + path, headers=headers) as response,
    ):
        return response.status, await response.json()


async def test_balance_usage_checkout_and_webhook(
    billed: tuple[Stack, Billing], stripe_stub: StripeStub
) -> None:
    running, billing = billed
    account_id, key = await new_key(billing, credits=5 * MICRO)
    await running.sdk(key).chat.completions.create(model=CHAT, messages=MESSAGES, max_tokens=4)
    for _ in range(100):  # the settle runs right after the response, in the background
        status, balance = await _get(running, "/v1/billing/balance", key)
        if balance["held_micro"] == 0:
            break
        await asyncio.sleep(0.02)
    assert status == 200 and balance["object"] == "billing.balance"
    assert balance["account_id"] == account_id and 0 < balance["available_micro"] < 5 * MICRO
    status, usage = await _get(running, f"/v1/billing/usage?model={CHAT}", key)
    assert status == 200 and usage["object"] == "list"
    [day] = usage["data"]
    assert (day["model"], day["requests"], day["output_tokens"]) == (CHAT, 1, 4)
    assert day["cost_micro"] == 5 * MICRO - balance["available_micro"]
    status, error = await _get(running, "/v1/billing/usage?limit=0", key)
    assert status == 400 and error["error"]["param"] == "limit"
    status, error = await _get(running, "/v1/billing/balance", None)
    assert status == 401 and error["error"]["code"] == "invalid_api_key"

    async with aiohttp.ClientSession() as session:
        async with session.post(
            running.gateway_url + "/v1/billing/checkout",
            json={"credits": 25},
            headers={"Authorization": f"Bearer {key}"},
        ) as response:
            checkout = await response.json()
            assert response.status == 200, checkout
        assert checkout["credits"] == 25 and checkout["url"].startswith("https://")
        sent = stripe_stub.requests[-1]
        assert sent["metadata[account_id]"] == str(account_id)
        assert sent["metadata[credits]"] == str(25 * MICRO)
        paid = event(
            "checkout.session.completed",
            {
                "id": checkout["id"],
                "object": "checkout.session",
                "amount_total": checkout["amount"],
                "currency": "usd",
                "payment_status": "paid",
                "payment_intent": f"pi_{checkout['id']}",
                "client_reference_id": str(account_id),
                "metadata": {"account_id": str(account_id), "credits": str(25 * MICRO)},
            },
        )
        payload = payload_of(paid)
        hook = running.gateway_url + "/v1/billing/stripe/webhook"
        async with session.post(hook, data=payload, headers={"Stripe-Signature": "t=1,v1=00"}) as r:
            rejected = await r.json()
            assert r.status == 400 and rejected["error"]["code"] == "invalid_webhook"
        signed = {"Stripe-Signature": sign(payload, WEBHOOK_SECRET)}
        for expected in ("processed", "duplicate"):  # Stripe redelivers: credited once
            async with session.post(hook, data=payload, headers=signed) as r:
                assert r.status == 200 and (await r.json())["status"] == expected
    status, after = await _get(running, "/v1/billing/balance", key)
    assert after["available_micro"] == balance["available_micro"] + 25 * MICRO
    assert (await billing.accounts.verify([account_id])).ok
