"""Key lifecycle and authentication against the database (no Redis): hashing, 401/403, update,
revoke, rotate."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from billing import (
    AccountSuspended,
    Billing,
    BillingNotFound,
    InvalidApiKey,
    KeyHasher,
    ModelNotAllowed,
)
from billing.keys.store import generate_secret
from core.db.base import utcnow
from core.db.tables.billing import ApiKey
from tests.integration.billing.conftest import Funded


async def test_only_a_keyed_hash_is_stored(billing: Billing, funded: Funded) -> None:
    ctx, secret = await funded(0)
    async with billing.db.read() as session:
        row = (await session.execute(select(ApiKey).where(ApiKey.id == ctx.key_id))).scalar_one()
        dump = " ".join(
            str(v) for v in (await session.execute(text("SELECT * FROM api_keys"))).all()
        )
    assert secret not in dump and secret[8:] not in dump
    assert row.secret_hash == KeyHasher("test-key-hash-secret").hash(secret)
    assert row.secret_hash != KeyHasher("another-secret").hash(secret)
    assert secret.startswith(row.prefix) and secret.endswith(row.last4)
    assert ctx.prefix == f"{row.prefix}…{row.last4}"


async def test_authenticate_rejects_unknown_malformed_revoked_expired(
    billing: Billing, funded: Funded
) -> None:
    ctx, secret = await funded(0)
    auth = billing.authenticator
    assert (await auth.authenticate(secret)).key_id == ctx.key_id
    for bad in [
        "",
        "sk-sn19-short",
        secret[:-1] + ("A" if secret[-1] != "A" else "B"),
        secret.upper(),
        generate_secret(),
    ]:
        with pytest.raises(InvalidApiKey) as info:
            await auth.authenticate(bad)
        assert info.value.status_code == 401 and info.value.code == "invalid_api_key"

    await billing.keys.update(ctx.key_id, expires_at=utcnow() - timedelta(seconds=1))
    auth.clear()
    with pytest.raises(InvalidApiKey, match="expired"):
        await auth.authenticate(secret)
    await billing.keys.update(ctx.key_id, expires_at=utcnow() + timedelta(days=1))
    auth.clear()
    await auth.authenticate(secret)

    await billing.keys.revoke(ctx.key_id)
    auth.clear()
    with pytest.raises(InvalidApiKey, match="revoked"):
        await auth.authenticate(secret)


async def test_allowlist_and_suspension_are_403(billing: Billing, funded: Funded) -> None:
    ctx, secret = await funded(0, allowed_models=["sn19-tiny-chat"])
    auth = billing.authenticator
    auth.authorize(ctx, "sn19-tiny-chat")
    with pytest.raises(ModelNotAllowed) as info:
        auth.authorize(ctx, "all-minilm-l6-v2")
    assert info.value.status_code == 403 and info.value.param == "model"

    await billing.accounts.set_status(ctx.account_id, "suspended")
    auth.clear()
    with pytest.raises(AccountSuspended) as suspended:
        await auth.authenticate(secret)
    assert suspended.value.status_code == 403
    await billing.accounts.set_status(ctx.account_id, "active")
    auth.clear()
    await auth.authenticate(secret)


async def test_update_rotate_and_list(billing: Billing, funded: Funded) -> None:
    ctx, secret = await funded(0)
    info = await billing.keys.update(
        ctx.key_id,
        name="renamed",
        allowed_models=["a", "b"],
        rpm_limit=10,
        tpm_limit=0,
        daily_spend_cap=5,
        monthly_spend_cap=50,
    )
    assert info.name == "renamed" and info.allowed_models == ("a", "b")
    assert (info.rpm_limit, info.tpm_limit) == (10, None)  # 0 means unlimited
    assert (info.daily_spend_cap, info.monthly_spend_cap) == (5, 50)
    billing.authenticator.clear()
    new_ctx = await billing.authenticator.authenticate(secret)
    assert new_ctx.allowed_models == ("a", "b") and new_ctx.rpm_limit == 10

    rotated = await billing.keys.rotate(ctx.key_id)
    assert rotated.key.id == ctx.key_id and rotated.secret != secret
    billing.authenticator.clear()
    with pytest.raises(InvalidApiKey):
        await billing.authenticator.authenticate(secret)
    assert (await billing.authenticator.authenticate(rotated.secret)).key_id == ctx.key_id

    listed = await billing.keys.list_keys(ctx.account_id)
    assert [k.id for k in listed] == [ctx.key_id]
    await billing.keys.revoke(ctx.key_id)
    with pytest.raises(ValueError, match="revoked"):
        await billing.keys.rotate(ctx.key_id)


async def test_defaults_and_errors(billing: Billing) -> None:
    account = await billing.accounts.create("defaults")
    created = await billing.keys.create(account.id, "k")
    # Settings defaults (billing.default_rpm / default_tpm).
    assert (created.key.rpm_limit, created.key.tpm_limit) == (600, 1_000_000)
    with pytest.raises(BillingNotFound):
        await billing.keys.create(10**9, "nobody")
    with pytest.raises(BillingNotFound):
        await billing.keys.revoke(10**9)
    with pytest.raises(ValueError):
        await billing.keys.create(account.id, "bad", secret="sk-sn19-not-a-valid-one")
    imported = generate_secret()
    key = await billing.keys.create(account.id, "imported", secret=imported)
    assert (await billing.authenticator.authenticate(imported)).key_id == key.key.id
