"""A local HTTP stand-in for the part of Stripe's API billing calls, and webhook signing exactly
as Stripe does it, so tests drive the real ``stripe`` library end to end and offline.

- ``StripeStub``: an aiohttp app on 127.0.0.1 serving ``POST /v1/checkout/sessions``
  (form-encoded, as the library sends it); it records every request and answers a Checkout
  Session object, or a Stripe error when told to fail.
- ``sign(payload, secret)``: the ``Stripe-Signature`` header, ``t=<unix>,v1=<hex HMAC-SHA256 of
  "<t>.<payload>" under the endpoint secret>``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.net import free_port

_ids = itertools.count(1)


def sign(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_test_{next(_ids)}_{int(time.time() * 1000)}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": {"object": obj},
    }


def payload_of(evt: dict[str, Any]) -> bytes:
    return json.dumps(evt, separators=(",", ":")).encode()


@dataclass
class StripeStub:
    requests: list[dict[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    fail_with: int | None = None
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _create_session(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests.append({k: str(v) for k, v in form.items()})
        self.headers.append(dict(request.headers))
        if self.fail_with is not None:
            return web.json_response(
                {"error": {"type": "api_error", "message": "stub failure"}}, status=self.fail_with
            )
        session_id = f"cs_test_{next(_ids)}"
        return web.json_response(
            {
                "id": session_id,
                "object": "checkout.session",
                "url": f"https://checkout.stripe.test/c/pay/{session_id}",
                "mode": form.get("mode"),
                "payment_status": "unpaid",
                "status": "open",
                "metadata": {
                    "account_id": form.get("metadata[account_id]"),
                    "credits": form.get("metadata[credits]"),
                },
            }
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/checkout/sessions", self._create_session)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
