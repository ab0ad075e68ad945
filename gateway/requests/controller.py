"""``GET /v1/requests/{request_id}``: who served one of the caller's requests, with the proof.

The API key's own account only: another account's request id, or an unknown one, is a 404
``request_not_found`` (no existence leak). The answer names the model, the key, what was
delivered and charged, the miner's hotkey and uid, the miner's receipt as stored (a
``sn19-receipt/1`` record anyone can verify offline with ``sn19 receipts verify``), the
gateway's verdict on it, and the checker's score of the answer if the request was sampled.
The receipt and the check arrive off the request path: right after a request they may still
be ``null`` (``receipt_status: "none"``).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get
from litestar.types import ASGIApp

from billing import ServedRequest, format_credits, receipt_fields
from core.errors import NotFound
from gateway.billing.controller import answer, key_account
from gateway.state import Gateway
from scoring import RequestCheck, request_check

ROUTE = "/v1/requests/{request_id:str}"


class RequestKey(msgspec.Struct, frozen=True):
    id: int
    name: str


class RequestMiner(msgspec.Struct, frozen=True):
    hotkey: str | None
    uid: int | None


class RequestUsage(msgspec.Struct, frozen=True):
    input_tokens: int
    output_tokens: int
    images: int
    steps: int


class RequestCheckOut(msgspec.Struct, frozen=True):
    quality: float
    passed: bool
    reason: str
    checked_at: int


class RequestProvenance(msgspec.Struct, frozen=True):
    id: str
    object: str
    created: int
    model: str
    status: str
    key: RequestKey
    usage: RequestUsage
    cost: str  # credits, six decimals
    cost_micro: int
    latency_ms: int | None
    miner: RequestMiner
    receipt_status: str  # valid | invalid | absent | none (not stored yet, or no answer)
    receipt: dict[str, Any] | None
    check: RequestCheckOut | None


def provenance(served: ServedRequest, check: RequestCheck | None) -> RequestProvenance:
    return RequestProvenance(
        id=served.request_id,
        object="request",
        created=int(served.created_at.timestamp()),
        model=served.task,
        status=served.status,
        key=RequestKey(served.key_id, served.key_name),
        usage=RequestUsage(served.input_tokens, served.output_tokens, served.images, served.steps),
        cost=format_credits(served.cost),
        cost_micro=served.cost,
        latency_ms=served.latency_ms,
        miner=RequestMiner(served.miner_hotkey, served.miner_uid),
        receipt_status=served.receipt_status,
        receipt=receipt_fields(served.receipt),
        check=(
            RequestCheckOut(
                check.quality, check.passed, check.reason, int(check.checked_at.timestamp())
            )
            if check is not None
            else None
        ),
    )


@get(ROUTE)
async def get_request(
    request: Request[Any, Any, Any], gateway: Gateway, request_id: str
) -> ASGIApp:
    ctx, _, account_id = await key_account(request, gateway, "/v1/requests")
    system = gateway.billing
    served = (
        await system.usage.receipts.served(account_id, request_id) if system is not None else None
    )
    if served is None or system is None:
        raise NotFound(
            f"No request '{request_id[:128]}' for this API key's account.",
            param="request_id",
            code="request_not_found",
        )
    check = (
        await request_check(system.db, served.request_id, hotkey=served.miner_hotkey)
        if served.miner_hotkey
        else None
    )
    return answer(ctx, provenance(served, check))


REQUEST_HANDLERS = (get_request,)
