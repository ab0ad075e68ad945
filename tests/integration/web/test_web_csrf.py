"""CSRF: every form post without the page's token, with a wrong one, with another browser's
token, or from another site is refused (403) and changes nothing."""

from __future__ import annotations

import pytest

from billing import Billing
from tests.integration.web.conftest import Clients, Users, signed_in
from tests.integration.web.test_web_access import ADMIN, CUSTOMER, PUBLIC, ROUTES, SIGNED_IN, STAFF
from tests.support.dashboard import FormClient, page_token
from web.tokens import csrf_token

POSTS = [(path, access, data) for method, path, access, data in ROUTES if method == "POST"]


async def _browsers(
    billing: Billing, users: Users, clients: Clients
) -> tuple[dict[str, FormClient], dict[str, str]]:
    account = await billing.accounts.create("csrf")
    key = await billing.keys.create(account.id, "k")
    customer = await users("customer", account_id=account.id)
    admin = await users("admin")
    spare = await users("support")
    anonymous = clients()
    await anonymous.get("/dashboard/login")  # gets its pre-sign-in cookie
    browsers = {
        PUBLIC: anonymous,
        CUSTOMER: await signed_in(clients, customer),
        ADMIN: await signed_in(clients, admin),
    }
    browsers[STAFF] = browsers[SIGNED_IN] = browsers[ADMIN]
    ids = {
        "{account_id}": str(account.id),
        "{key_id}": str(key.key.id),
        "{user_id}": str(spare.id),
        "{action}": "disable",
        "{invitation_id}": "1",
        "{bad_token}": "whatever",
    }
    return browsers, ids


def _url(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace(name, value)
    return "/dashboard" + path


@pytest.mark.parametrize("variant", ["missing", "wrong", "other-browser", "cross-site"])
async def test_every_form_post_needs_the_token(
    billing: Billing, users: Users, clients: Clients, variant: str
) -> None:
    browsers, ids = await _browsers(billing, users, clients)
    stranger = clients()
    await stranger.get("/dashboard/login")
    stranger_token = await stranger.token()
    refused = []
    for path, access, data in POSTS:
        client = browsers[access]
        form = dict(data)
        headers = {}
        if variant == "wrong":
            form["csrf_token"] = "A" * 43
        elif variant == "other-browser":
            form["csrf_token"] = stranger_token
        elif variant == "cross-site":
            form["csrf_token"] = await client.token()
            headers["sec-fetch-site"] = "cross-site"
        response = await client.post_form(_url(path, ids), form, csrf=False, headers=headers)
        if response.status_code != 403 or "This form has expired" not in response.text:
            refused.append(f"{path}: {response.status_code}")
    assert not refused, refused
    # Nothing happened: the key still works, nobody was disabled, no credits moved.
    key = await billing.keys.get(int(ids["{key_id}"]))
    assert not key.revoked
    assert (await billing.accounts.balance(int(ids["{account_id}"]))).available == 0


async def test_pages_embed_the_session_bound_token(
    billing: Billing, users: Users, clients: Clients
) -> None:
    account = await billing.accounts.create("tokens")
    client = await signed_in(clients, await users("customer", account_id=account.id))
    page = await client.get("/dashboard/keys")
    session = client.cookie("sn19_session")
    assert session is not None
    assert page_token(page.text) == csrf_token(session)
    # The token of the pre-sign-in cookie is no longer accepted once signed in.
    created = await client.post_form("/dashboard/keys", {"name": "ok"})
    assert created.status_code == 303
