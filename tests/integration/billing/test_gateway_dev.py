"""`sn19 dev` with billing on: its preparation migrates the database, funds the dev account and
registers the key it prints; the gateway it configures accepts that key and bills it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from billing.keys.store import generate_secret
from core.settings import Settings
from gateway import create_app
from sn19.cli import main
from sn19.compose import gateway_app
from sn19.dev.plan import DevPlan, build_plan
from tests.support.dashboard import FormClient
from tests.support.db import run_in_thread
from tests.support.net import free_port
from tests.support.serving import serve_app


@contextlib.contextmanager
def prepared(data_dir: Path, api_key: str, credits: int) -> Iterator[DevPlan]:
    plan = build_plan(
        data_dir=data_dir,
        port=free_port(),
        miner_count=1,
        miner_port=free_port(),
        api_key=api_key,
        period_s=60.0,
        credits=credits,
    )
    plan.redis.start()
    try:
        for step in plan.prepare_steps:
            run_in_thread(step.run)  # as `sn19 dev` runs them: synchronously, no event loop
        yield plan
    finally:
        plan.redis.stop()


async def _balance(url: str, key: str) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + "/v1/billing/balance", headers={"Authorization": f"Bearer {key}"}) as r,
    ):
        return r.status, await r.json()


async def test_dev_prepares_billing_and_the_gateway_accepts_its_key(tmp_path: Path) -> None:
    key = generate_secret()
    with prepared(tmp_path, key, credits=50) as plan:
        assert plan.api_key == key
        config = tmp_path / "config" / "validator.toml"
        settings = Settings.from_env({}, config_file=str(config))
        assert settings.billing.enabled and settings.environment == "dev"
        assert not settings.billing.key_hash_secret.get()  # the built-in dev secret
        # What `sn19 gateway` serves: the API and, billing being on, the dashboard.
        async with gateway_app(settings) as app, serve_app(app, server="granian") as url:
            status, balance = await _balance(url, key)
            assert status == 200 and balance["available"] == "50.000000"
            status, error = await _balance(url, generate_secret())
            assert status == 401 and error["error"]["code"] == "invalid_api_key"  # type: ignore[index]
            await _operator_sees_the_dev_account(url, plan.operator)
    # Started again with the same key (`sn19 dev --api-key KEY`): the same key, topped up.
    with prepared(tmp_path, key, credits=80) as plan:
        assert plan.api_key == key
        settings = Settings.from_env({}, config_file=str(tmp_path / "config" / "validator.toml"))
        async with serve_app(create_app(settings), server="granian") as url:
            status, balance = await _balance(url, key)
            assert status == 200 and balance["available"] == "80.000000"


async def _operator_sees_the_dev_account(url: str, operator: tuple[str, str]) -> None:
    """The dev administrator signs in to the dashboard the gateway serves; the pages that use
    the gateway process's database, billing and scoring read API (``sn19.compose``) render."""
    email, password = operator
    browser = FormClient(None, base_url=url)
    try:
        await browser.login(email, password)
        accounts = await browser.get("/dashboard/admin/accounts")
        assert accounts.status_code == 200 and ">dev<" in accounts.text, accounts.text[:500]
        miners = await browser.get("/dashboard/admin/miners")
        assert miners.status_code == 200, miners.text[:500]
    finally:
        await browser.aclose()


def _typo() -> str:
    """A fixed well-formed key with one letter changed: the checksum no longer fits. Fixed, so
    every pytest-xdist worker collects the same test ids."""
    return "sk-sn19-" + "a" * 32 + "000000"  # right shape, wrong checksum


@pytest.mark.parametrize("key", ["sk-sn19-dev-hello", "sk-not-a-key", _typo()])
def test_dev_refuses_a_malformed_api_key(key: str) -> None:
    result = CliRunner().invoke(main, ["dev", "--api-key", key])
    assert result.exit_code == 2
    assert "not an sn19 API key" in result.output and "--api-key" in result.output


def test_gateway_with_billing_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{tmp_path}"\nenvironment = "dev"\n[billing]\nenabled = true\n', "utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SN19")}
    done = subprocess.run(
        [sys.executable, "-m", "sn19", "gateway", "--config", str(config)],
        check=False,
        cwd=Path(__file__).resolve().parents[3],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "run `sn19 db upgrade` first" in done.stderr
