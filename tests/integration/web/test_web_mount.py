"""The dashboard mounted inside another Litestar app (as the gateway mounts it): links,
redirects, cookies and static files all carry the mount prefix, at any mount path."""

from __future__ import annotations

import re

from litestar import Litestar, get

from billing import Billing
from core.db.engine import Database
from protocol.catalog import Catalog
from tests.integration.web.conftest import Users
from tests.support.dashboard import FormClient, parent_app, web_settings
from web import create_dashboard, mount_dashboard


def _links(html: str) -> list[str]:
    """Every link, form action and asset (in-page fragments like the skip link aside)."""
    return [link for link in re.findall(r'(?:href|action|src)="([^"]+)"', html) if link[0] != "#"]


async def test_mounted_at_dashboard(
    db: Database, billing: Billing, dev_catalog: Catalog, users: Users
) -> None:
    settings = web_settings()
    dashboard = create_dashboard(settings, db=db, billing=billing, redis=None, catalog=dev_catalog)

    @get("/v1/models")
    async def models() -> dict[str, str]:
        return {"object": "list"}

    app = Litestar(route_handlers=[mount_dashboard(dashboard), models], openapi_config=None)
    client = FormClient(app)
    try:
        assert (await client.get("/v1/models")).json() == {"object": "list"}
        root = await client.get("/dashboard")
        assert root.status_code == 303 and root.headers["location"] == "/dashboard/login"
        assert (await client.get("/dashboard/")).headers["location"] == "/dashboard/login"
        login = await client.get("/dashboard/login")
        assert login.status_code == 200
        assert "Path=/dashboard" in login.headers["set-cookie"]
        links = _links(login.text)
        assert links and all(link.startswith("/dashboard/") for link in links), links
        for asset in [link for link in links if "/static/" in link]:
            static = await client.get(asset)
            assert static.status_code == 200 and static.headers["content-type"].startswith(
                ("text/css", "text/javascript", "application/javascript")
            )
        admin = await users("admin")
        signed = await client.login(admin.email)
        assert signed.headers["location"] == "/dashboard/admin"
        assert all("Path=/dashboard" in c for c in signed.headers.get_list("set-cookie"))
        page = await client.get("/dashboard/admin/accounts")
        assert all(link.startswith("/dashboard/") for link in _links(page.text))
        # Trailing slashes are fine under the mount too.
        assert (await client.get("/dashboard/admin/accounts/")).status_code == 200
    finally:
        await client.aclose()


async def test_any_mount_path(
    db: Database, billing: Billing, dev_catalog: Catalog, users: Users
) -> None:
    settings = web_settings()
    dashboard = create_dashboard(
        settings, db=db, billing=billing, redis=None, catalog=dev_catalog, mount_path="/ops/console"
    )
    app = Litestar(route_handlers=[mount_dashboard(dashboard, "/ops/console")])
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(app) as http:
        response = await http.get("/ops/console/", follow_redirects=False)
        assert response.headers["location"] == "/ops/console/login"
        page = await http.get("/ops/console/login")
        assert all(link.startswith("/ops/console/") for link in _links(page.text))
        assert "Path=/ops/console" in page.headers["set-cookie"]


def test_parent_app_helper_mounts_and_serves_the_webhook(
    db: Database, billing: Billing, dev_catalog: Catalog
) -> None:
    dashboard = create_dashboard(
        web_settings(), db=db, billing=billing, redis=None, catalog=dev_catalog
    )
    paths = {route.path for route in parent_app(dashboard, billing).routes}
    assert {"/dashboard", "/v1/billing/stripe/webhook"} <= paths
