"""Small helpers the route modules share."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from litestar import Request
from litestar.exceptions import NotFoundException

from billing import BillingNotFound, KeyInfo
from core.db.base import utcnow
from web.auth import client_ip
from web.state import Dashboard

Req = Request[Any, Any, Any]
RANGES = (7, 30, 90, 365)
DEFAULT_RANGE = 30


def ip_of(request: Req, dash: Dashboard) -> str:
    return client_ip(request)


def today() -> date:
    return utcnow().date()


def now() -> datetime:
    return utcnow()


def range_days(request: Req) -> int:
    raw = request.query_params.get("days", "")
    return int(raw) if raw.isdigit() and int(raw) in RANGES else DEFAULT_RANGE


def positive_id(request: Req, name: str) -> int | None:
    raw = request.query_params.get(name, "")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 2**62 else None


def api_base(request: Req, dash: Dashboard) -> str:
    """The OpenAI-compatible base URL customers point their SDK at."""
    if dash.api_base_url:
        return dash.api_base_url.rstrip("/")
    public = dash.settings.gateway.public_url
    if public:
        return public.rstrip("/") + "/v1"
    return str(request.base_url).rstrip("/") + "/v1"


def model_ids(dash: Dashboard) -> list[str]:
    return [task.id for task in dash.catalog.tasks]


def sample_model(dash: Dashboard) -> str:
    tasks = [t for t in dash.catalog.tasks if t.enabled]
    for task in tasks:
        if task.kind == "chat":
            return task.id
    return tasks[0].id if tasks else "MODEL"


async def key_of_account(dash: Dashboard, key_id: int, account_id: int) -> KeyInfo:
    """The key when it belongs to the account; 404 otherwise (not 403: no existence leak)."""
    try:
        key = await dash.billing.keys.get(key_id)
    except BillingNotFound:
        raise NotFoundException("No such key.") from None
    if key.account_id != account_id:
        raise NotFoundException("No such key.")
    return key
