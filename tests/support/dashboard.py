"""Dashboard test helpers: the dashboard mounted at /dashboard in a parent Litestar app (as the
gateway mounts it), plus billing's Stripe webhook; a form-aware HTTP client; users and accounts.

``FormClient.post_form`` adds the page's CSRF token (derived from the browser's session or
pre-sign-in cookie, exactly as the dashboard renders it into every form).
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

import httpx
import msgspec
from litestar import Litestar, Request, Response, post

from billing import Billing, WebhookRejected
from core.db.engine import Database
from core.settings import Settings
from protocol.catalog import Catalog
from web import User, UserService, create_dashboard, mount_dashboard
from web.auth import PRE_COOKIE, SESSION_COOKIE
from web.tokens import csrf_token

PASSWORD = "correct-horse-battery"
_names = itertools.count()


def unique_email(role: str) -> str:
    return f"{role}-{next(_names)}-{uuid.uuid4().hex[:6]}@example.com"


def web_settings(redis_prefix: str = "sn19test:", **sections: Any) -> Settings:
    billing = {"key_hash_secret": "test-key-hash-secret", **sections.pop("billing", {})}
    return Settings.from_env(
        {},
        overrides={
            "environment": "dev",
            "redis": {"key_prefix": redis_prefix},
            "billing": billing,
            **sections,
        },
    )


def parent_app(dashboard: Litestar, billing: Billing, *, mount: str = "/dashboard") -> Litestar:
    """What the gateway will do: mount the dashboard, serve billing's Stripe webhook."""

    @post("/v1/billing/stripe/webhook")
    async def stripe_webhook(request: Request[Any, Any, Any]) -> Response[bytes]:
        try:
            result = await billing.api.stripe_webhook(
                await request.body(), request.headers.get("stripe-signature")
            )
        except WebhookRejected as exc:
            return Response(msgspec.json.encode({"error": exc.message}), status_code=400)
        return Response(msgspec.json.encode(result), status_code=200)

    return Litestar(
        route_handlers=[mount_dashboard(dashboard, mount), stripe_webhook],
        openapi_config=None,
        logging_config=None,
    )


def build_app(
    settings: Settings, db: Database, billing: Billing, catalog: Catalog, redis: Any = None
) -> Litestar:
    dashboard = create_dashboard(settings, db=db, billing=billing, redis=redis, catalog=catalog)
    return parent_app(dashboard, billing)


_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class FormClient:
    """An httpx client on the parent app that knows the dashboard's CSRF convention."""

    def __init__(self, app: Litestar | None, *, base_url: str = "http://testserver") -> None:
        """``app``: served in-process; None: ``base_url`` is a real server."""
        transport = httpx.ASGITransport(app=app) if app is not None else None
        self.http = httpx.AsyncClient(
            transport=transport, base_url=base_url, follow_redirects=False
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, **kwargs)

    def cookie(self, name: str) -> str | None:
        for item in self.http.cookies.jar:
            if item.name == name:
                return item.value
        return None

    async def token(self) -> str:
        for name in (SESSION_COOKIE, PRE_COOKIE):
            if value := self.cookie(name):
                return csrf_token(value)
        page = await self.get("/dashboard/login")
        found = _TOKEN.search(page.text)
        assert found, page.text
        return found.group(1)

    async def post_form(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any
    ) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", await self.token())
        return await self.http.post(path, data=form, **kwargs)

    async def post_once(self, path: str, data: dict[str, Any] | None = None) -> httpx.Response:
        """A form that creates a secret: its 303, then the one-time view it leads to."""
        posted = await self.post_form(path, data)
        assert posted.status_code == 303, posted.text
        location = posted.headers["location"]
        assert "/once/" in location, location
        return await self.get(location)

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        response = await self.post_form("/dashboard/login", {"email": email, "password": password})
        assert response.status_code == 303, response.text
        return response


async def make_user(
    db: Database, role: str, *, account_id: int | None = None, password: str = PASSWORD
) -> User:
    return await UserService(db).create(
        unique_email(role), password, role=role, account_id=account_id
    )


def page_token(html: str) -> str | None:
    found = _TOKEN.search(html)
    return found.group(1) if found else None


async def spend(
    billing: Billing,
    catalog: Catalog,
    secret: str,
    *,
    task: str = "sn19-tiny-chat",
    input_tokens: int = 12,
    output_tokens: int = 20,
    status: str = "ok",
) -> int:
    """One request's billing, exactly as the gateway does it (authenticate, hold, settle):
    the usage the dashboard then shows. Returns its cost in micro-credits."""
    from billing import Usage, estimate_chat

    ctx = await billing.authenticator.authenticate(secret)
    found = catalog.get(task)
    assert found is not None
    hold = await billing.service.hold(
        ctx, found, estimate_chat(input_tokens, 64, 1), request_id=f"req-{uuid.uuid4().hex[:12]}"
    )
    settled = await billing.service.settle(
        hold,
        Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        miner_hotkey="5MinerHotkey" + "x" * 36,
        latency_ms=180,
        status=status,
    )
    return int(settled.cost)


async def key_works(billing: Billing, secret: str) -> bool:
    """Whether the database accepts the secret now (a fresh authenticator: no cached answer)."""
    from billing import AccountSuspended, InvalidApiKey, KeyAuthenticator

    try:
        await KeyAuthenticator(billing.db, billing.hasher).authenticate(secret)
    except (InvalidApiKey, AccountSuspended):
        return False
    return True


async def seed_history(
    db: Database, account_id: int, key_id: int, *, days: int = 60
) -> dict[Any, int]:
    """Daily aggregates (``usage_daily``) for the past ``days`` days, a plausible weekly
    pattern, so charts have something to show. Returns {day: cost in micro-credits}."""
    import random
    from datetime import timedelta

    from core.db.base import utcnow
    from core.db.tables.billing import UsageDaily

    rng = random.Random(account_id)
    today = utcnow().date()
    costs: dict[Any, int] = {}
    rows = []
    for back in range(1, days + 1):
        day = today - timedelta(days=back)
        weekday = 0.55 if day.weekday() >= 5 else 1.0
        requests = int((400 + 6 * (days - back)) * weekday * rng.uniform(0.8, 1.2))
        tokens_in, tokens_out = requests * rng.randint(300, 500), requests * rng.randint(120, 260)
        cost = tokens_in * 200 // 1_000_000 * 1000 + tokens_out * 600 // 1_000_000 * 1000
        costs[day] = cost
        rows.append(
            UsageDaily(
                day=day,
                account_id=account_id,
                key_id=key_id,
                task="sn19-tiny-chat",
                requests=requests,
                errors=int(requests * rng.uniform(0.0, 0.03)),
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                images=0,
                steps=0,
                cost=cost,
            )
        )
    async with db.transaction() as session:
        session.add_all(rows)
    return costs
