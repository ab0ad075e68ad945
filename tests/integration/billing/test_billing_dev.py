"""The `sn19 dev` preparation: migrations, a funded dev account, a working key."""

from __future__ import annotations

import asyncio
from pathlib import Path

from billing.dev import prepare_dev_billing
from billing.keys.store import generate_secret, is_well_formed
from billing.money import MICRO
from core.settings import Settings
from tests.support.db import run_in_thread


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, overrides={"environment": "dev", "data_dir": str(tmp_path)})


def test_prepare_dev_billing_twice(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    secret = run_in_thread(lambda: prepare_dev_billing(settings, credits=100))
    assert is_well_formed(secret)
    chosen = generate_secret()
    assert run_in_thread(lambda: prepare_dev_billing(settings, secret=chosen)) == chosen
    assert run_in_thread(lambda: prepare_dev_billing(settings, secret=chosen)) == chosen

    async def check() -> tuple[int, int]:
        from billing.components import open_billing

        async with open_billing(settings, use_redis=False) as billing:
            ctx = await billing.authenticator.authenticate(chosen)
            await billing.authenticator.authenticate(secret)
            keys = await billing.keys.list_keys(ctx.account_id)
            return (await billing.accounts.balance(ctx.account_id)).available, len(keys)

    balance, keys = run_in_thread(lambda: asyncio.run(check()))
    assert balance == 1000 * MICRO  # topped up to the larger amount, never beyond
    assert keys == 2
