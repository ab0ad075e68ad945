"""`sn19 init validator|miner`: the written file loads with the real settings loaders, the wallet
is created (real sr25519 keys) and reused, and the next steps it prints work as written: `sn19 db
upgrade` then `sn19 doctor` on the new file pass against a real Redis and database."""

from __future__ import annotations

import tomllib
from pathlib import Path

import bittensor as bt
import pytest
from click.testing import CliRunner, Result

from core.settings import Settings
from miner_server.settings import MinerSettings
from sn19.cli import main
from tests.integration.dev.test_sn19_doctor import lines
from tests.support.redis_fixtures import REDIS_URL

pytestmark = pytest.mark.redis


def sn19(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def init_validator(tmp_path: Path, *extra: str) -> Result:
    return sn19(
        "init",
        "validator",
        "--output",
        str(tmp_path / "validator.toml"),
        "--data-dir",
        str(tmp_path / "data"),
        "--wallet-path",
        str(tmp_path / "wallets"),
        "--network",
        "local",
        "--redis-url",
        REDIS_URL,
        "--public-url",
        "https://api.example.com",
        "--no-coldkey-password",
        *extra,
    )


def test_validator_file_loads_and_doctor_passes(tmp_path: Path) -> None:
    result = init_validator(tmp_path)
    assert result.exit_code == 0, result.output
    config = tmp_path / "validator.toml"
    text = config.read_text()
    assert text.count("\n#") > 10  # commented
    settings = Settings.from_env({}, config_file=str(config))
    assert settings.data_dir == str(tmp_path / "data")
    assert settings.redis.url == REDIS_URL and settings.chain.network == "local"
    assert settings.wallet.path == str(tmp_path / "wallets")
    assert settings.gateway.public_url == "https://api.example.com"
    assert settings.billing.enabled and settings.scoring.metrics_port == 9102
    assert tomllib.loads(text)["billing"] == {"enabled": True}  # no secret written

    wallet = bt.Wallet(name="validator", hotkey="default", path=str(tmp_path / "wallets"))
    assert wallet.hotkey_file.exists_on_device() and wallet.coldkeypub_file.exists_on_device()
    assert f"wallet: hotkey {wallet.hotkey.ss58_address} (created its coldkey and hotkey)" in (
        result.output
    )
    assert result.output.count("mnemonic") == 2
    assert "SN19_BILLING__KEY_HASH_SECRET" in result.output

    # The next steps, as printed.
    assert f"sn19 doctor --config {config}" in result.output
    assert f"sn19 db upgrade --config {config}" in result.output
    before = sn19("doctor", "--config", str(config))
    assert before.exit_code == 1 and lines(before.output)["database"].startswith("FAIL")
    assert sn19("db", "upgrade", "--config", str(config)).exit_code == 0
    after = sn19("doctor", "--config", str(config))
    assert after.exit_code == 0, after.output
    assert list(lines(after.output)) == ["database", "redis", "wallet", "disk"]
    assert wallet.hotkey.ss58_address in lines(after.output)["wallet"]


def test_existing_file_and_wallet(tmp_path: Path) -> None:
    assert init_validator(tmp_path).exit_code == 0
    again = init_validator(tmp_path)
    assert again.exit_code == 1 and "pass --force" in again.output
    forced = init_validator(tmp_path, "--force", "--gateway-port", "9000")
    assert forced.exit_code == 0 and "(already existed)" in forced.output
    assert "mnemonic" not in forced.output
    settings = Settings.from_env({}, config_file=str(tmp_path / "validator.toml"))
    assert settings.gateway.port == 9000


def test_a_new_coldkey_needs_a_password_or_the_flag(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "init",
            "validator",
            "--output",
            str(tmp_path / "v.toml"),
            "--wallet-path",
            str(tmp_path / "wallets"),
        ],
    )
    assert result.exit_code == 1 and "--no-coldkey-password" in result.output
    assert not (tmp_path / "v.toml").exists()


def test_passwords_stay_out_of_the_file(tmp_path: Path) -> None:
    result = init_validator(
        tmp_path, "--database-url", "postgresql+asyncpg://sn19:hunter2@db:5432/sn19"
    )
    assert result.exit_code == 1 and "SN19_DATABASE__URL" in result.output
    assert not (tmp_path / "validator.toml").exists()


def test_miner_file_loads(tmp_path: Path) -> None:
    config = tmp_path / "miner.toml"
    result = sn19(
        "init",
        "miner",
        "--output",
        str(config),
        "--wallet-path",
        str(tmp_path / "wallets"),
        "--port",
        "8123",
        "--catalog",
        "dev",
        "--task",
        "sn19-tiny-chat",
        "--no-coldkey-password",
    )
    assert result.exit_code == 0, result.output
    settings = MinerSettings.from_env({}, config_file=str(config))
    assert (settings.port, settings.catalog, settings.tasks) == (8123, "dev", ["sn19-tiny-chat"])
    assert settings.wallet.name == "miner" and settings.chain.network == "finney"
    assert f"sn19 miner --config {config}" in result.output
    wallet = bt.Wallet(name="miner", hotkey="default", path=str(tmp_path / "wallets"))
    assert wallet.hotkey.ss58_address in result.output
