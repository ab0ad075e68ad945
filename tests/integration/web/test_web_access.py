"""Access control: every dashboard route × every role (anonymous, the customer who owns the
data, another customer, support staff, an admin). The table must list every route the app
serves, so a new route cannot ship without a role decision."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar

from billing import Billing
from core.db.engine import Database
from protocol.catalog import resolve_catalog
from tests.integration.web.conftest import Clients, Users, signed_in
from tests.support.dashboard import FormClient, spend
from tests.support.scoreboard import hotkey, seed_metagraph
from web import UserService
from web.invitations import InvitationService

PUBLIC, SIGNED_IN, CUSTOMER, STAFF, ADMIN = "public", "signed-in", "customer", "staff", "admin"

# (method, path under /dashboard, who may use it, form data for the allowed role)
ROUTES: list[tuple[str, str, str, dict[str, str]]] = [
    ("GET", "/", PUBLIC, {}),
    ("GET", "/login", PUBLIC, {}),
    ("POST", "/login", PUBLIC, {"email": "nobody@example.com", "password": "wrong-password"}),
    ("POST", "/logout", SIGNED_IN, {}),
    ("GET", "/once/{view_id}", SIGNED_IN, {}),
    ("GET", "/signup", PUBLIC, {}),
    ("POST", "/signup", PUBLIC, {}),
    ("GET", "/invite/{token}", PUBLIC, {}),
    ("POST", "/invite/{bad_token}", PUBLIC, {"password": "long-enough-password"}),
    ("GET", "/static/{file_path}", PUBLIC, {}),
    ("GET", "/overview", CUSTOMER, {}),
    ("GET", "/keys", CUSTOMER, {}),
    ("POST", "/keys", CUSTOMER, {}),
    ("GET", "/keys/{key_id}", CUSTOMER, {}),
    ("POST", "/keys/{key_id}", CUSTOMER, {}),
    ("POST", "/keys/{key_id}/rotate", CUSTOMER, {}),
    ("POST", "/keys/{key_id}/revoke", CUSTOMER, {}),
    ("GET", "/usage", CUSTOMER, {}),
    ("GET", "/usage/requests", CUSTOMER, {}),
    ("GET", "/usage/requests/{request_id}", CUSTOMER, {}),
    ("GET", "/billing", CUSTOMER, {}),
    ("GET", "/billing/statement.csv", CUSTOMER, {}),
    ("POST", "/billing/checkout", CUSTOMER, {}),
    ("GET", "/docs", CUSTOMER, {}),
    ("GET", "/admin", STAFF, {}),
    ("GET", "/admin/accounts", STAFF, {}),
    ("POST", "/admin/accounts", ADMIN, {}),
    ("GET", "/admin/accounts/{account_id}", STAFF, {}),
    ("GET", "/admin/accounts/{account_id}/statement.csv", STAFF, {}),
    ("POST", "/admin/accounts/{account_id}/status", ADMIN, {}),
    ("POST", "/admin/accounts/{account_id}/grant", ADMIN, {}),
    ("POST", "/admin/accounts/{account_id}/keys", ADMIN, {}),
    ("POST", "/admin/accounts/{account_id}/invite", ADMIN, {}),
    ("GET", "/admin/keys/{key_id}", STAFF, {}),
    ("POST", "/admin/keys/{key_id}", ADMIN, {}),
    ("POST", "/admin/keys/{key_id}/rotate", ADMIN, {}),
    ("POST", "/admin/keys/{key_id}/revoke", ADMIN, {}),
    ("GET", "/admin/prices", STAFF, {}),
    ("POST", "/admin/prices", ADMIN, {"task": "sn19-tiny-chat", "input": "0.2", "output": "0.4"}),
    ("POST", "/admin/prices/reset", ADMIN, {"task": "sn19-tiny-chat"}),
    ("GET", "/admin/users", STAFF, {}),
    ("POST", "/admin/users/invite", ADMIN, {}),
    ("POST", "/admin/users/{user_id}/{action}", ADMIN, {}),
    ("POST", "/admin/invitations/{invitation_id}/revoke", ADMIN, {}),
    ("GET", "/admin/audit", STAFF, {}),
    ("GET", "/admin/settings", STAFF, {}),
    ("POST", "/admin/settings", ADMIN, {"public_scoreboard": "on"}),
    ("GET", "/admin/miners", STAFF, {}),
    ("GET", "/admin/miners/{hotkey}", STAFF, {}),
    ("GET", "/admin/checker", STAFF, {}),
    ("GET", "/admin/chain", STAFF, {}),
    ("GET", "/scoreboard", PUBLIC, {}),
    ("GET", "/scoreboard/{hotkey}", PUBLIC, {}),
]


def _template(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def test_the_table_covers_every_route(app: Litestar) -> None:
    mounted = app.route_handler_method_map
    served: set[tuple[str, str]] = set()
    dashboard = _dashboard_of(app)
    for route in dashboard.routes:
        for method in getattr(route, "methods", ()):
            if method in ("HEAD", "OPTIONS"):
                continue
            served.add((method, _template(route.path)))
    listed = {(method, re.sub(r"\{bad_token\}", "{token}", path)) for method, path, _, _ in ROUTES}
    assert served == listed, (served - listed, listed - served)
    assert mounted  # the parent app serves the mount


def _dashboard_of(app: Litestar) -> Litestar:
    for route in app.routes:
        handler = getattr(route, "route_handler", None)
        fn = getattr(handler, "fn", None)
        inner = getattr(fn, "__closure__", None)
        for cell in inner or ():
            if isinstance(cell.cell_contents, Litestar):
                return cell.cell_contents
    raise AssertionError("no mounted dashboard")


@dataclass
class World:
    account_a: int
    key_a: int
    user_id: int
    invitation_id: int
    tokens: list[str]
    request_id: str


async def _world(db: Database, billing: Billing, users: Users) -> tuple[World, dict[str, Any]]:
    a = await billing.accounts.create("customer A")
    b = await billing.accounts.create("customer B")
    key = await billing.keys.create(a.id, "A's key")
    await billing.accounts.grant(a.id, 5_000_000, actor="test", reason="requests")
    await spend(billing, resolve_catalog("dev"), key.secret)
    [served] = await billing.usage.requests(a.id, limit=1)
    people = {
        "customer": await users("customer", account_id=a.id),
        "other-customer": await users("customer", account_id=b.id),
        "support": await users("support"),
        "admin": await users("admin"),
    }
    victim = await users("customer", account_id=b.id)
    await seed_metagraph(db, 2)  # a miner for /admin/miners/{hotkey}
    invitations = InvitationService(db, UserService(db), ttl_s=3600)
    token, invitation = await invitations.create(
        f"invitee-{a.id}@example.com", role="customer", account_id=a.id, created_by="test"
    )
    return World(a.id, key.key.id, victim.id, invitation.id, [token], served.request_id), people


def _fill(path: str, world: World) -> str:
    return (
        path.replace("{account_id}", str(world.account_a))
        .replace("{key_id}", str(world.key_a))
        .replace("{user_id}", str(world.user_id))
        .replace("{action}", "disable")
        .replace("{invitation_id}", str(world.invitation_id))
        .replace("{token}", world.tokens[0])
        .replace("{bad_token}", "not-a-valid-invitation-token")
        .replace("{file_path}", "dashboard.css")
        .replace("{hotkey}", hotkey(1))
        .replace("{view_id}", "no-such-view")
        .replace("{request_id}", world.request_id)
    )


def _expected(role: str, access: str, path: str) -> str:
    """allowed | login | forbidden | hidden (404: another account's data)."""
    if access == PUBLIC:
        return "allowed"
    if role == "anonymous":
        return "login"
    if access == SIGNED_IN:
        return "allowed"
    if access == CUSTOMER:
        if role == "customer":
            return "allowed"
        if role == "other-customer":
            return "hidden" if "{key_id}" in path or "{request_id}" in path else "allowed"
        return "forbidden"
    if access == STAFF:
        return "allowed" if role in ("support", "admin") else "forbidden"
    return "allowed" if role == "admin" else "forbidden"


def _outcome(method: str, status: int, location: str) -> str:
    if status == 303 and location.startswith("/dashboard/login?next="):
        return "login"
    if status == 401 and method == "POST":
        return "login"
    if status == 403:
        return "forbidden"
    if status == 404:
        return "hidden"
    if status >= 500:
        return f"error {status}"
    return "allowed"


async def test_every_route_refuses_the_wrong_role(
    db: Database, billing: Billing, users: Users, clients: Clients
) -> None:
    world, people = await _world(db, billing, users)
    browsers: dict[str, FormClient] = {"anonymous": clients()}
    for role, person in people.items():
        browsers[role] = await signed_in(clients, person)
    problems = []
    checked = 0
    # The admin goes last: its changes (rotate, revoke, disable) must not hide other checks.
    for role in ("anonymous", "other-customer", "support", "customer", "admin"):
        client = browsers[role]
        for method, path, access, data in ROUTES:
            if path == "/logout":
                continue  # signing out: checked below, once per role
            url = "/dashboard" + _fill(path, world)
            if method == "GET":
                response = await client.get(url)
            else:
                response = await client.post_form(url, data)
            got = _outcome(method, response.status_code, response.headers.get("location", ""))
            want = _expected(role, access, path)
            # Public pages answer 401 to a wrong password and 404 when sign-up is closed or an
            # invitation is unknown: still not an access refusal.
            if access == PUBLIC and got in ("login", "hidden") and method == "POST":
                got = "allowed"
            if access == PUBLIC and path == "/signup" and got == "hidden":
                got = "allowed"
            checked += 1
            if got != want:
                problems.append(
                    f"{role:>14} {method:4} {url}: {response.status_code} -> {got}, want {want}"
                )
    assert not problems, "\n".join(problems)
    assert checked == 5 * (len(ROUTES) - 1)
    # Signing out: needs a session; ends it.
    anonymous = await browsers["anonymous"].post_form("/dashboard/logout")
    assert anonymous.status_code == 401
    for role in people:
        response = await browsers[role].post_form("/dashboard/logout")
        assert response.status_code == 303, role


async def test_customers_see_only_their_account(
    billing: Billing, users: Users, clients: Clients
) -> None:
    mine = await billing.accounts.create("mine")
    theirs = await billing.accounts.create("theirs")
    await billing.accounts.grant(theirs.id, 7_654_321, actor="test", reason="r")
    their_key = await billing.keys.create(theirs.id, "their-secret-key-name")
    me = await signed_in(clients, await users("customer", account_id=mine.id))
    for url in (
        "/dashboard/overview",
        "/dashboard/keys",
        "/dashboard/billing",
        "/dashboard/usage",
        "/dashboard/usage/requests",
    ):
        text = (await me.get(url)).text
        assert "their-secret-key-name" not in text and "7.65" not in text, url
    assert (await me.get(f"/dashboard/keys/{their_key.key.id}")).status_code == 404
    before = await billing.keys.get(their_key.key.id)
    for action in ("", "/rotate", "/revoke"):
        response = await me.post_form(f"/dashboard/keys/{their_key.key.id}{action}", {"name": "x"})
        assert response.status_code == 404
    assert await billing.keys.get(their_key.key.id) == before
    # Customers never reach operator data, even by guessing ids.
    assert (await me.get(f"/dashboard/admin/accounts/{theirs.id}")).status_code == 403
    grant = await me.post_form(
        f"/dashboard/admin/accounts/{mine.id}/grant", {"amount": "1000", "reason": "free money"}
    )
    assert grant.status_code == 403
    assert (await billing.accounts.balance(mine.id)).available == 0


async def test_support_staff_cannot_change_anything(
    billing: Billing, users: Users, clients: Clients
) -> None:
    account = await billing.accounts.create("support target")
    support = await signed_in(clients, await users("support"))
    page = await support.get(f"/dashboard/admin/accounts/{account.id}")
    assert page.status_code == 200
    assert 'id="grant"' not in page.text  # no forms for read-only staff
    refused = await support.post_form(
        f"/dashboard/admin/accounts/{account.id}/grant", {"amount": "5", "reason": "r"}
    )
    assert refused.status_code == 403
    assert (await billing.accounts.balance(account.id)).available == 0


@pytest.mark.parametrize("path", ["/dashboard/keys", "/dashboard/admin/accounts/1"])
async def test_anonymous_pages_redirect_to_sign_in_and_back(clients: Clients, path: str) -> None:
    response = await clients().get(path + "?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == f"/dashboard/login?next={path}%3Fx%3D1"
