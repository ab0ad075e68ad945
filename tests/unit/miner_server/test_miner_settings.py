"""MinerSettings: defaults < TOML < environment < overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from miner_server.settings import MinerSettings
from protocol.catalog import EngineSpec
from protocol.config import ConfigError

TOML = """
catalog = "production"
tasks = ["llama-3.1-8b-instruct", "flux-schnell"]
port = 9000

[wallet]
name = "m1"
hotkey = "h1"

[task."llama-3.1-8b-instruct"]
concurrency = 16
capacity = 60000
engine.type = "forward"
engine.model = "unsloth/Meta-Llama-3.1-8B-Instruct"
engine.options = { base_url = "http://127.0.0.1:8000/v1" }

[chain]
network = "finney"
"""


def test_defaults() -> None:
    settings = MinerSettings.from_env({})
    assert (settings.host, settings.port, settings.catalog) == ("0.0.0.0", 8091, "dev")
    assert settings.tasks == [] and settings.task == {}
    assert (settings.wallet.name, settings.wallet.hotkey, settings.wallet.path) == (
        "miner",
        "default",
        "",
    )
    assert (settings.auth.max_age_s, settings.auth.allowed_skew_s) == (10.0, 2.0)
    assert settings.server == "granian" and settings.device == ""
    assert (settings.chain.network, settings.chain.netuid) == ("local", 19)
    assert settings.for_task("anything").concurrency is None


def test_toml_env_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "miner.toml"
    path.write_text(TOML)
    env = {
        "SN19_MINER_CONFIG": str(path),
        "SN19_MINER_PORT": "9100",
        "SN19_MINER_WALLET__HOTKEY": "h2",
        "SN19_MINER_AUTH__MAX_AGE_S": "20",
        "SN19_MINER_TASKS": "flux-schnell",
        "OTHER": "ignored",
    }
    settings = MinerSettings.from_env(env, overrides={"host": "127.0.0.1"})
    assert settings.catalog == "production"
    assert settings.port == 9100
    assert settings.host == "127.0.0.1"
    assert settings.tasks == ["flux-schnell"]
    assert (settings.wallet.name, settings.wallet.hotkey) == ("m1", "h2")
    assert settings.auth.max_age_s == 20.0
    llama = settings.for_task("llama-3.1-8b-instruct")
    assert llama.concurrency == 16 and llama.capacity == 60000
    assert llama.engine == EngineSpec(
        type="forward",
        model="unsloth/Meta-Llama-3.1-8B-Instruct",
        options={"base_url": "http://127.0.0.1:8000/v1"},
    )
    assert settings.chain.network == "finney"


def test_config_file_argument_wins_over_env(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text("port = 1234\n")
    settings = MinerSettings.from_env({"SN19_MINER_CONFIG": "/nonexistent"}, config_file=str(path))
    assert settings.port == 1234


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("portt = 1", "portt"),
        ("server = 'hypercorn'", "server"),
        ('[task."x"]\nconcurrency = 0', "concurrency"),
        ('[task."x"]\nengine = { type = "magic", model = "m" }', "engine.type"),
        ("[auth]\nmax_age_s = -1", "max_age_s"),
    ],
)
def test_bad_settings_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=field):
        MinerSettings.from_env({}, config_file=str(path))


def test_missing_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot read settings file"):
        MinerSettings.from_env({}, config_file="/nonexistent/miner.toml")
