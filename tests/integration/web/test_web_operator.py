"""What operators do in the dashboard: accounts, credits, keys of any account, prices, users,
and the audit log of it all."""

from __future__ import annotations

import re

import pytest

from billing import Billing
from billing.money import MICRO
from core.db.engine import Database
from tests.integration.web.conftest import Clients, Users, signed_in
from tests.support.dashboard import FormClient, key_works
from web import User


def secret_of(html: str) -> str:
    found = re.search(r'id="new-secret">(sk-sn19-[A-Za-z0-9]+)<', html)
    assert found, html
    return found.group(1)


@pytest.fixture
async def admin(users: Users) -> User:
    return await users("admin")


@pytest.fixture
async def operator(clients: Clients, admin: User) -> FormClient:
    return await signed_in(clients, admin)


async def _create_account(operator: FormClient, name: str, credits: str = "") -> int:
    response = await operator.post_form(
        "/dashboard/admin/accounts",
        {"name": name, "email": f"{name}@example.com", "credits": credits},
    )
    assert response.status_code == 303, response.text
    found = re.match(
        r"/dashboard/admin/accounts/(\d+)\?done=account_created", response.headers["location"]
    )
    assert found
    return int(found.group(1))


async def test_create_account_and_grant_credits(
    operator: FormClient, admin: User, billing: Billing
) -> None:
    account_id = await _create_account(operator, "acme", credits="10")
    page = await operator.get(f"/dashboard/admin/accounts/{account_id}?done=account_created")
    assert "Account created." in page.text and "10.00" in page.text
    granted = await operator.post_form(
        f"/dashboard/admin/accounts/{account_id}/grant", {"amount": "25.5", "reason": "pilot"}
    )
    assert granted.status_code == 303
    assert (await billing.accounts.balance(account_id)).available == 35_500_000
    [latest, initial] = await billing.accounts.ledger_entries(account_id)
    assert (latest.kind, latest.actor, latest.reason) == (
        "grant",
        f"operator:{admin.email}",
        "pilot",
    )
    assert initial.reason == "initial credits"
    # A reason is required; a grant must be positive; an adjustment may debit.
    missing = await operator.post_form(
        f"/dashboard/admin/accounts/{account_id}/grant", {"amount": "5"}
    )
    assert missing.status_code == 400 and "required" in missing.text
    negative = await operator.post_form(
        f"/dashboard/admin/accounts/{account_id}/grant", {"amount": "-5", "reason": "x"}
    )
    assert negative.status_code == 400
    adjusted = await operator.post_form(
        f"/dashboard/admin/accounts/{account_id}/grant",
        {"amount": "-5.5", "reason": "duplicate", "kind": "adjustment"},
    )
    assert adjusted.status_code == 303
    assert (await billing.accounts.balance(account_id)).available == 30 * MICRO
    bad_email = await operator.post_form(
        "/dashboard/admin/accounts", {"name": "x", "email": "not-mail"}
    )
    assert bad_email.status_code == 400 and "valid e-mail" in bad_email.text


async def test_keys_of_any_account(operator: FormClient, billing: Billing) -> None:
    account_id = await _create_account(operator, "keys-co", credits="5")
    created = await operator.post_once(
        f"/dashboard/admin/accounts/{account_id}/keys",
        {
            "name": "prod",
            "model_scope": "only",
            "models": "sn19-tiny-chat",
            "rpm": "120",
            "tpm": "50000",
            "daily_cap": "2",
            "monthly_cap": "40",
            "expires": "2099-01-31",
        },
    )
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    secret = secret_of(created.text)
    ctx = await billing.authenticator.authenticate(secret)
    assert ctx.account_id == account_id and ctx.allowed_models == ("sn19-tiny-chat",)
    assert (ctx.rpm_limit, ctx.tpm_limit) == (120, 50000)
    assert (ctx.daily_spend_cap, ctx.monthly_spend_cap) == (2 * MICRO, 40 * MICRO)
    key_page = await operator.get(f"/dashboard/admin/keys/{ctx.key_id}")
    assert secret not in key_page.text and ctx.prefix in key_page.text
    updated = await operator.post_form(
        f"/dashboard/admin/keys/{ctx.key_id}",
        {"name": "prod", "model_scope": "all", "rpm": "", "tpm": "999"},
    )
    assert updated.status_code == 303
    info = await billing.keys.get(ctx.key_id)
    assert (info.allowed_models, info.rpm_limit, info.tpm_limit, info.daily_spend_cap) == (
        None,
        None,
        999,
        None,
    )
    rotated = await operator.post_once(f"/dashboard/admin/keys/{ctx.key_id}/rotate")
    new_secret = secret_of(rotated.text)
    assert not await key_works(billing, secret)
    assert await key_works(billing, new_secret)
    bad = await operator.post_form(
        f"/dashboard/admin/keys/{ctx.key_id}",
        {"name": "p", "model_scope": "only", "models": "gpt-99"},
    )
    assert bad.status_code == 400 and "Unknown model" in bad.text
    revoked = await operator.post_form(f"/dashboard/admin/keys/{ctx.key_id}/revoke")
    assert revoked.status_code == 303
    assert not await key_works(billing, new_secret)


async def test_suspend_and_reactivate(operator: FormClient, billing: Billing) -> None:
    account_id = await _create_account(operator, "flaky")
    secret = (await billing.keys.create(account_id, "k")).secret
    await operator.post_form(
        f"/dashboard/admin/accounts/{account_id}/status", {"status": "suspended"}
    )
    assert not await key_works(billing, secret)
    await operator.post_form(f"/dashboard/admin/accounts/{account_id}/status", {"status": "active"})
    assert await key_works(billing, secret)


async def test_prices(operator: FormClient, billing: Billing) -> None:
    saved = await operator.post_form(
        "/dashboard/admin/prices", {"task": "sn19-tiny-chat", "input": "0.15", "output": "0.6"}
    )
    assert saved.status_code == 303
    listing = {p.task: p for p in await billing.prices.listing()}
    assert listing["sn19-tiny-chat"].override is not None
    assert listing["sn19-tiny-chat"].effective.output_per_million == 600_000
    page = await operator.get("/dashboard/admin/prices")
    assert "0.60" in page.text and "override" in page.text
    bad = await operator.post_form(
        "/dashboard/admin/prices", {"task": "sn19-tiny-chat", "input": "abc"}
    )
    assert bad.status_code == 400
    unknown = await operator.post_form("/dashboard/admin/prices", {"task": "nope", "input": "1"})
    assert unknown.status_code == 404
    await operator.post_form("/dashboard/admin/prices/reset", {"task": "sn19-tiny-chat"})
    listing = {p.task: p for p in await billing.prices.listing()}
    assert listing["sn19-tiny-chat"].override is None


async def test_staff_users_and_the_last_admin(
    operator: FormClient, admin: User, clients: Clients, db: Database
) -> None:
    invited = await operator.post_once(
        "/dashboard/admin/users/invite", {"email": "help@example.com", "role": "support"}
    )
    assert invited.status_code == 200
    link = re.search(r'id="invite-link">([^<]+)<', invited.text)
    assert link
    helper = clients()
    accepted = await helper.post_form(
        link.group(1).replace("http://testserver", ""), {"password": "support-password"}
    )
    assert accepted.headers["location"] == "/dashboard/admin"
    assert (await helper.get("/dashboard/admin/users")).status_code == 200
    self_disable = await operator.post_form(f"/dashboard/admin/users/{admin.id}/disable")
    assert self_disable.status_code == 400 and "cannot disable yourself" in self_disable.text


async def test_operator_actions_are_audited(operator: FormClient, admin: User) -> None:
    account_id = await _create_account(operator, "audited", credits="1")
    await operator.post_form(
        f"/dashboard/admin/accounts/{account_id}/grant", {"amount": "2", "reason": "why not"}
    )
    await operator.post_form(f"/dashboard/admin/accounts/{account_id}/keys", {"name": "k"})
    page = await operator.get(f"/dashboard/admin/audit?account={account_id}")
    for action in ("account.create", "credits.grant", "key.create"):
        assert action in page.text
    assert f"operator:{admin.email}" in page.text and "reason=why not" in page.text
    overview = await operator.get("/dashboard/admin")
    assert overview.status_code == 200 and "<svg" in overview.text
