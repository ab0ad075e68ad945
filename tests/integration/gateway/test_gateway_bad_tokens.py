"""One customer's bad input hurts no one else (real gateway, real miner servers, billing on):
token ids outside the embedding model's vocabulary — what LangChain's ``OpenAIEmbeddings`` sends
by default — are a 400 naming the field, no miner is asked, and the next requests of another
key all succeed on miners that were never cooled down."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest

from billing.components import open_billing
from billing.money import MICRO
from tests.integration.gateway.conftest import EMBED, Stack, billing_database, fast_engines, stack


@pytest.fixture(scope="module")
async def billed(
    request: pytest.FixtureRequest,
    wallet_root: Path,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    database = billing_database(request, "sqlite", tmp_path_factory.mktemp("db"))
    async with stack(
        wallet_root,
        redis_url,
        miners={"e1": fast_engines(), "e2": fast_engines()},
        billing_db=database,
    ) as running:
        yield running


async def attempts(stack: Stack) -> dict[str, float]:
    """The gateway's miner attempts for the embedding model, by outcome (from /metrics)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(stack.gateway_url + "/metrics") as response,
    ):
        text = await response.text()
    found: dict[str, float] = {}
    pattern = r'sn19_gateway_miner_attempts_total\{model="' + re.escape(EMBED)
    pattern += r'",outcome="([a-z_]+)"\} ([0-9.e+]+)'
    for outcome, value in re.findall(pattern, text):
        found[outcome] = float(value)
    return found


async def test_bad_token_ids_hurt_no_one_else(billed: Stack) -> None:
    assert billed.settings is not None
    async with open_billing(billed.settings) as billing:
        account = await billing.accounts.create(f"other-{time.monotonic_ns()}")
        await billing.accounts.grant(account.id, 10 * MICRO, actor="test", reason="test")
        other = (await billing.keys.create(account.id, "other")).secret
    before = await attempts(billed)
    with pytest.raises(openai.BadRequestError) as refused:
        await billed.client.embeddings.create(model=EMBED, input=[[9906, 1917, 100000]])
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["param"] == "input[0][2]" and error["code"] == "invalid_token_id"
    assert await attempts(billed) == before  # no miner was asked
    client = billed.sdk(other)
    for index in range(10):
        reply = await client.embeddings.create(model=EMBED, input=[f"sentence {index}", "more"])
        assert len(reply.data) == 2
    after = await attempts(billed)
    assert set(after) == {"ok"}, after  # every attempt succeeded: nobody cooled down
    assert after["ok"] - before.get("ok", 0.0) == 10
