"""API key secrets: format, checksum, keyed hashing, the dev-only default secret."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.keys.store import (
    KEY_LENGTH,
    KeyContext,
    KeyHasher,
    display_parts,
    generate_secret,
    is_well_formed,
)
from core.settings import Settings
from protocol.config import ConfigError


def test_generated_secrets_are_well_formed_and_unique() -> None:
    secrets = {generate_secret() for _ in range(500)}
    assert len(secrets) == 500
    for secret in secrets:
        assert secret.startswith("sk-sn19-") and len(secret) == KEY_LENGTH
        assert is_well_formed(secret)


@given(st.integers(8, KEY_LENGTH - 1), st.sampled_from("0123456789ABCDEFabcdefXYZxyz"))
def test_a_single_typo_fails_the_checksum(position: int, char: str) -> None:
    secret = generate_secret()
    if secret[position] == char:
        return
    typo = secret[:position] + char + secret[position + 1 :]
    assert not is_well_formed(typo)


def test_malformed() -> None:
    secret = generate_secret()
    for bad in [
        "",
        secret[:-1],
        secret + "x",
        "sk-other-" + secret[9:],
        secret.replace(secret[10], "-"),
    ]:
        assert not is_well_formed(bad)


def test_hash_is_keyed_and_display_keeps_no_secret() -> None:
    secret = generate_secret()
    one, two = KeyHasher("a" * 32), KeyHasher("b" * 32)
    assert one.hash(secret) != two.hash(secret)
    assert one.matches(secret, one.hash(secret)) and not one.matches(secret, two.hash(secret))
    prefix, last4 = display_parts(secret)
    assert prefix == secret[:12] and last4 == secret[-4:]  # 4 random chars + checksum only


def test_hash_secret_required_outside_dev() -> None:
    with pytest.raises(ConfigError, match="key_hash_secret"):
        KeyHasher.from_settings(Settings.from_env({}, overrides={"environment": "production"}))
    dev = KeyHasher.from_settings(Settings.from_env({}, overrides={"environment": "dev"}))
    prod = KeyHasher.from_settings(
        Settings.from_env(
            {"SN19_BILLING__KEY_HASH_SECRET": "x" * 40}, overrides={"environment": "production"}
        )
    )
    secret = generate_secret()
    assert dev.hash(secret) != prod.hash(secret)
    with pytest.raises(ConfigError):
        KeyHasher("")


def test_key_context_allowlist() -> None:
    everything = KeyContext(key_id=1, account_id=1, name="k", prefix="p")
    assert everything.allows("any") and everything.actor == "key:1"
    limited = KeyContext(key_id=1, account_id=1, name="k", prefix="p", allowed_models=("a",))
    assert limited.allows("a") and not limited.allows("b")
