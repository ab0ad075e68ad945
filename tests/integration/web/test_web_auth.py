"""Signing in and out: argon2id passwords, server-side sessions (hash only, rotated on sign-in,
idle and absolute expiry, invalidated on sign-out), cookie attributes, sign-in rate limiting,
sign-up and invitations."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy import select, update

from billing import Billing
from core.db.base import utcnow
from core.db.engine import Database
from core.db.tables.billing import Operator
from core.db.tables.web import AuditEntry, Invitation, WebSession
from protocol.catalog import Catalog
from tests.integration.web.conftest import Clients, Users, signed_in
from tests.support.dashboard import PASSWORD, FormClient, build_app, web_settings
from web.audit import AuditLog
from web.tokens import csrf_token


async def test_passwords_are_argon2id_hashes(db: Database, users: Users) -> None:
    user = await users("admin")
    async with db.read() as session:
        stored = (
            await session.execute(select(Operator.password_hash).where(Operator.id == user.id))
        ).scalar_one()
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored


async def test_sessions_store_only_a_hash_and_rotate_on_sign_in(
    db: Database, users: Users, clients: Clients
) -> None:
    user = await users("admin")
    client = await signed_in(clients, user)
    first = client.cookie("sn19_session")
    assert first
    async with db.read() as session:
        hashes = set(
            (
                await session.execute(
                    select(WebSession.token_hash).where(WebSession.user_id == user.id)
                )
            ).scalars()
        )
    assert hashes == {hashlib.sha256(first.encode()).hexdigest()}
    await client.login(user.email)  # signing in again: a new token, the old session ends
    second = client.cookie("sn19_session")
    assert second and second != first
    stale = clients()
    stale.http.cookies.set("sn19_session", first, path="/dashboard")
    response = await stale.get("/dashboard/admin")
    assert response.status_code == 303 and response.headers["location"].startswith(
        "/dashboard/login"
    )
    assert 'sn19_session=""' in response.headers.get(
        "set-cookie", ""
    )  # the stale cookie is cleared


async def test_sign_out_ends_the_session_on_the_server(
    db: Database, users: Users, clients: Clients
) -> None:
    user = await users("customer", account_id=(await _account(db)).id)
    client = await signed_in(clients, user)
    token = client.cookie("sn19_session")
    response = await client.post_form("/dashboard/logout")
    assert (
        response.status_code == 303
        and response.headers["location"] == "/dashboard/login?done=signed_out"
    )
    replay = clients()
    replay.http.cookies.set("sn19_session", str(token), path="/dashboard")
    assert (await replay.get("/dashboard/overview")).status_code == 303
    async with db.read() as session:
        left = (
            await session.execute(select(WebSession).where(WebSession.user_id == user.id))
        ).first()
    assert left is None


async def _account(db: Database) -> object:
    from billing import AccountService

    return await AccountService(db).create("auth test")


async def test_cookie_attributes(users: Users, clients: Clients) -> None:
    user = await users("admin")
    plain = clients()
    login = await plain.login(user.email)
    cookie = next(c for c in login.headers.get_list("set-cookie") if c.startswith("sn19_session="))
    assert "HttpOnly" in cookie and "Path=/dashboard" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http (development)
    tls = clients(base_url="https://testserver")
    login = await tls.login(user.email)
    cookie = next(c for c in login.headers.get_list("set-cookie") if c.startswith("sn19_session="))
    assert "Secure" in cookie


async def test_secure_cookies_always_behind_a_tls_proxy(
    db: Database, billing: Billing, dev_catalog: Catalog, users: Users
) -> None:
    settings = web_settings(web={"secure_cookies": "always"})
    client = FormClient(build_app(settings, db, billing, dev_catalog))
    try:
        # Plain http at the app (TLS ended at the proxy): the cookies are Secure anyway.
        form = await client.get("/dashboard/login")
        pre = form.headers["set-cookie"]
        assert pre.startswith("sn19_pre=") and "Secure" in pre and "HttpOnly" in pre
    finally:
        await client.aclose()


async def test_a_trusted_proxys_forwarded_https_makes_cookies_secure(
    db: Database, billing: Billing, dev_catalog: Catalog, users: Users
) -> None:
    """Default settings trust a proxy on the same machine (the test client's peer address is
    127.0.0.1): its X-Forwarded-Proto: https is the original scheme, so cookies get Secure and
    X-Forwarded-For is the client's address. The same headers from an untrusted peer count for
    nothing."""
    user = await users("admin")
    forwarded = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"}
    trusted = FormClient(build_app(web_settings(), db, billing, dev_catalog))
    untrusted = FormClient(
        build_app(web_settings(web={"trusted_proxies": ["10.9.9.9"]}), db, billing, dev_catalog)
    )
    try:
        trusted.http.headers.update(forwarded)
        pre = (await trusted.get("/dashboard/login")).headers["set-cookie"]
        assert pre.startswith("sn19_pre=") and "; Secure" in pre
        # (httpx keeps Secure cookies off a plain-http URL: send what the browser would.)
        pre_value = pre.split(";")[0].split("=", 1)[1]
        login = await trusted.http.post(
            "/dashboard/login",
            data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(pre_value)},
            headers={"cookie": f"sn19_pre={pre_value}"},
        )
        assert login.status_code == 303, login.text
        cookie = next(
            c for c in login.headers.get_list("set-cookie") if c.startswith("sn19_session=")
        )
        assert "; Secure" in cookie
        session = cookie.split(";")[0]
        settings_page = await trusted.http.get(
            "/dashboard/admin/settings", headers={"cookie": session}
        )
        assert "<dd>https" in settings_page.text and 'id="plain-http"' not in settings_page.text
        untrusted.http.headers.update(forwarded)
        login = await untrusted.login(user.email)
        cookie = next(
            c for c in login.headers.get_list("set-cookie") if c.startswith("sn19_session=")
        )
        assert "Secure" not in cookie
    finally:
        await trusted.aclose()
        await untrusted.aclose()
    lines = await AuditLog(db).page(limit=5)
    logins = [line.ip for line in lines if line.action == "auth.login"]
    assert logins[:2] == ["127.0.0.1", "203.0.113.7"]  # newest first: untrusted, trusted


async def test_plain_http_on_a_public_address_is_flagged(
    db: Database, billing: Billing, dev_catalog: Catalog, users: Users, caplog: Any
) -> None:
    admin = await users("admin")
    settings = web_settings(gateway={"host": "0.0.0.0", "public_url": "http://validator.example"})
    with caplog.at_level("WARNING", logger="web.app"):
        app = build_app(settings, db, billing, dev_catalog)
    assert "served over plain http on 0.0.0.0" in caplog.text
    client = FormClient(app, base_url="http://validator.example")
    local = FormClient(app)
    try:
        await client.login(admin.email)
        page = await client.get("/dashboard/admin/settings")
        assert 'id="plain-http"' in page.text and "web.trusted_proxies" in page.text
        await local.login(admin.email)
        page = await local.http.get("/dashboard/admin/settings", headers={"host": "127.0.0.1:8000"})
        assert 'id="plain-http"' not in page.text
    finally:
        await client.aclose()
        await local.aclose()
    caplog.clear()
    with caplog.at_level("WARNING", logger="web.app"):
        build_app(web_settings(), db, billing, dev_catalog)  # 127.0.0.1: nothing to say
    assert "plain http" not in caplog.text


@pytest.mark.parametrize("which", ["idle", "absolute"])
async def test_sessions_expire(db: Database, users: Users, clients: Clients, which: str) -> None:
    user = await users("admin")
    client = await signed_in(clients, user)
    assert (await client.get("/dashboard/admin")).status_code == 200
    past = utcnow() - timedelta(days=2)
    values = {"last_seen_at": past} if which == "idle" else {"expires_at": past}
    async with db.transaction() as session:
        await session.execute(
            update(WebSession).where(WebSession.user_id == user.id).values(**values)
        )
    response = await client.get("/dashboard/admin")
    assert response.status_code == 303 and "/dashboard/login" in response.headers["location"]


async def test_disabling_a_user_ends_their_sessions(
    billing: Billing, users: Users, clients: Clients
) -> None:
    admin = await signed_in(clients, await users("admin"))
    account = await billing.accounts.create("to disable")
    customer_user = await users("customer", account_id=account.id)
    customer = await signed_in(clients, customer_user)
    assert (await customer.get("/dashboard/overview")).status_code == 200
    done = await admin.post_form(f"/dashboard/admin/users/{customer_user.id}/disable")
    assert done.status_code == 303
    assert (await customer.get("/dashboard/overview")).status_code == 303
    again = clients()
    failed = await again.post_form(
        "/dashboard/login", {"email": customer_user.email, "password": PASSWORD}
    )
    assert failed.status_code == 401


async def test_wrong_password_and_unknown_user_look_the_same(
    users: Users, clients: Clients
) -> None:
    user = await users("admin")
    client = clients()
    wrong = await client.post_form(
        "/dashboard/login", {"email": user.email, "password": "nope-nope-nope"}
    )
    unknown = await client.post_form(
        "/dashboard/login", {"email": "ghost@example.com", "password": "nope-nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert (
        "The e-mail or password is not right." in wrong.text
        and "The e-mail or password is not right." in unknown.text
    )


async def test_no_open_redirect_after_sign_in(users: Users, clients: Clients) -> None:
    user = await users("admin")
    client = clients()
    for target, expected in (
        ("https://evil.example/", "/dashboard/admin"),
        ("//evil.example/", "/dashboard/admin"),
        ("/dashboard/admin/prices", "/dashboard/admin/prices"),
    ):
        response = await client.post_form(
            "/dashboard/login", {"email": user.email, "password": PASSWORD, "next": target}
        )
        assert response.headers["location"] == expected


async def _rate_limited(client: FormClient, email: str, limit: int) -> None:
    for _ in range(limit):
        failed = await client.post_form(
            "/dashboard/login", {"email": email, "password": "bad-password"}
        )
        assert failed.status_code == 401
    blocked = await client.post_form("/dashboard/login", {"email": email, "password": PASSWORD})
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0


async def test_sign_in_rate_limit_in_memory(users: Users, clients: Clients) -> None:
    user = await users("admin")
    await _rate_limited(clients(), user.email, 5)
    # Another e-mail from the same address is not locked out by that.
    other = await users("admin")
    await clients().login(other.email)


@pytest.mark.redis
async def test_sign_in_rate_limit_in_redis(
    db: Database,
    billing: Billing,
    dev_catalog: Catalog,
    users: Users,
    redis_client: Redis,
    redis_prefix: str,
) -> None:
    settings = web_settings(redis_prefix, web={"login_max_failures": 3, "login_window_s": 60})
    app = build_app(settings, db, billing, dev_catalog, redis_client)
    user = await users("admin")
    client, second = FormClient(app), FormClient(app)
    try:
        await _rate_limited(client, user.email, 3)
        # Shared across replicas: a second app on the same Redis refuses too.
        other_replica = FormClient(build_app(settings, db, billing, dev_catalog, redis_client))
        blocked = await other_replica.post_form(
            "/dashboard/login", {"email": user.email, "password": PASSWORD}
        )
        assert blocked.status_code == 429
        await other_replica.aclose()
        keys = [key async for key in redis_client.scan_iter(match=f"{redis_prefix}web:login:*")]
        ttls = [await redis_client.ttl(key) for key in keys]
        assert keys and all(0 < ttl <= 60 for ttl in ttls)
        assert user.email.encode() not in b"".join(keys)  # only hashes in key names
    finally:
        await client.aclose()
        await second.aclose()


async def test_sign_up_is_off_until_an_operator_switches_it_on(
    db: Database, users: Users, clients: Clients
) -> None:
    visitor = clients()
    closed = await visitor.get("/dashboard/signup")
    assert closed.status_code == 404 and "Sign-up is closed" in closed.text
    admin = await signed_in(clients, await users("admin"))
    assert (
        await admin.post_form("/dashboard/admin/settings", {"signup_enabled": "on"})
    ).status_code == 303
    form = await visitor.get("/dashboard/signup")
    assert form.status_code == 200
    email = f"new-{id(visitor)}@example.com"
    short = await visitor.post_form(
        "/dashboard/signup", {"account": "Newco", "email": email, "password": "short"}
    )
    assert short.status_code == 400 and "at least 10" in short.text
    created = await visitor.post_form(
        "/dashboard/signup", {"account": "Newco", "email": email, "password": PASSWORD}
    )
    assert (
        created.status_code == 303
        and created.headers["location"] == "/dashboard/overview?done=welcome"
    )
    overview = await visitor.get("/dashboard/overview")
    assert overview.status_code == 200 and "Newco" in overview.text
    duplicate = await clients().post_form(
        "/dashboard/signup", {"account": "Again", "email": email.upper(), "password": PASSWORD}
    )
    assert duplicate.status_code == 400 and "exists" in duplicate.text
    await admin.post_form("/dashboard/admin/settings", {})
    assert (await clients().get("/dashboard/signup")).status_code == 404


async def test_invitations(db: Database, billing: Billing, users: Users, clients: Clients) -> None:
    admin = await signed_in(clients, await users("admin"))
    account = await billing.accounts.create("invited co")
    email = f"owner-{account.id}@example.com"
    created = await admin.post_once(
        f"/dashboard/admin/accounts/{account.id}/invite", {"email": email}
    )
    assert created.status_code == 200
    link = re.search(r'id="invite-link">([^<]+)<', created.text)
    assert link
    path = link.group(1).replace("http://testserver", "")
    assert path.startswith("/dashboard/invite/")
    invitee = clients()
    assert email in (await invitee.get(path)).text
    accepted = await invitee.post_form(path, {"password": PASSWORD, "name": "Olivia"})
    assert accepted.status_code == 303 and accepted.headers["location"] == "/dashboard/overview"
    overview = await invitee.get("/dashboard/overview")
    assert overview.status_code == 200 and "invited co" in overview.text
    assert (await clients().get(path)).status_code == 404  # used once
    # An expired invitation cannot be used.
    token_page = await admin.post_once(
        f"/dashboard/admin/accounts/{account.id}/invite",
        {"email": f"late-{account.id}@example.com"},
    )
    late = re.search(r'id="invite-link">([^<]+)<', token_page.text)
    assert late
    async with db.transaction() as session:
        await session.execute(
            update(Invitation)
            .where(Invitation.email == f"late-{account.id}@example.com")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert (await clients().get(late.group(1).replace("http://testserver", ""))).status_code == 404


async def test_security_headers(app: Litestar, clients: Clients) -> None:
    response = await clients().get("/dashboard/login")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    static = await clients().get("/dashboard/static/dashboard.css")
    assert static.status_code == 200 and static.headers.get("cache-control") != "no-store"


async def test_sign_ins_are_audited(db: Database, users: Users, clients: Clients) -> None:
    user = await users("admin")
    await clients().login(user.email)
    async with db.read() as session:
        actions = list(
            (
                await session.execute(
                    select(AuditEntry.action).where(AuditEntry.actor_id == user.id)
                )
            ).scalars()
        )
    assert "auth.login" in actions
