from __future__ import annotations

import msgspec
import pytest

from protocol.chainfile import ChainFileError, Neuron, format_chain_file, parse_chain_file
from protocol.config import ConfigError, Secret, dump_settings, load_settings


def test_chain_file_roundtrip_and_uids() -> None:
    text = """
# comment
5Fvalidator  -  stake=10000 validator
5Fminer  127.0.0.1:8091  stake=0 coldkey=5Fcold   # trailing comment
"""
    neurons = parse_chain_file(text)
    assert [n.uid for n in neurons] == [0, 1]
    assert neurons[0].validator_permit and neurons[0].axon is None
    assert neurons[1].axon_url == "http://127.0.0.1:8091"
    assert parse_chain_file(format_chain_file(neurons)) == neurons


@pytest.mark.parametrize(
    "line",
    ["5F", "5F 127.0.0.1", "5F host:99999", "5F - stake=abc", "5F - weird"],
)
def test_chain_file_errors_name_the_line(line: str) -> None:
    with pytest.raises(ChainFileError, match="line 1"):
        parse_chain_file(line)


def test_duplicate_hotkey_rejected() -> None:
    with pytest.raises(ChainFileError, match="more than one line"):
        parse_chain_file("5F -\n5F -\n")


class Inner(msgspec.Struct, frozen=True):
    port: int = 1
    names: list[str] = []
    token: Secret = Secret("")


class Outer(msgspec.Struct, frozen=True):
    inner: Inner = Inner()
    flag: bool = False


def test_env_toml_and_override_precedence() -> None:
    settings = load_settings(
        Outer,
        env={"APP_INNER__PORT": "7", "APP_INNER__NAMES": "a, b", "APP_FLAG": "true", "OTHER": "x"},
        prefix="APP",
        toml_text="[inner]\nport = 3\ntoken = 's3cret'\n",
        overrides={"inner": {"port": 9}},
    )
    assert settings.inner.port == 9
    assert settings.inner.names == ["a", "b"]
    assert settings.flag is True
    assert settings.inner.token.get() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(dump_settings(settings))


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="inner.port"):
        load_settings(Outer, env={"APP_INNER__PORT": "x"}, prefix="APP")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(Outer, env={}, prefix="APP", toml_text="[inner")


def test_neuron_defaults() -> None:
    assert Neuron(uid=0, hotkey="h").axon_url is None


def test_foreign_variables_under_the_prefix_are_ignored() -> None:
    settings = load_settings(
        Outer,
        env={"APP_MINER_PORT": "1", "APP_CONFIG": "/x.toml", "APP_TEST_URL": "y", "APP_FLAG": "1"},
        prefix="APP",
    )
    assert settings.flag is True
    with pytest.raises(ConfigError, match="inner"):
        load_settings(StrictOuter, env={"APP_INNER__BOGUS": "1"}, prefix="APP")


class StrictInner(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    port: int = 1


class StrictOuter(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    inner: StrictInner = StrictInner()
