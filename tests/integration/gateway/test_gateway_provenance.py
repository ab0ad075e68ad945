"""Provenance for customers: a customer fetches who served their request
(``GET /v1/requests/{id}``: the miner's hotkey, the stored receipt and the gateway's verdict,
the check once the checker scored it), verifies the receipt offline with ``sn19 receipts
verify``, and cannot fetch another account's request (404, as for an unknown id)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from billing import Billing
from core.db.base import utcnow
from core.db.engine import Database
from core.db.tables.checks import CheckJobRecord
from core.db.tables.scoring import CheckResult
from protocol.catalog import resolve_catalog
from sn19.commands.receipts import command as receipts
from tests.integration.gateway.conftest import billing_database, fast_engines, stack

pytestmark = pytest.mark.redis
CHAT = "sn19-tiny-chat"


async def _provenance(http: httpx.AsyncClient, key: str, request_id: str) -> dict[str, Any]:
    """The request's provenance once it is settled and its receipt stored (both happen just
    after the answer, off the request path)."""
    for _ in range(200):
        response = await http.get(
            f"/v1/requests/{request_id}", headers={"authorization": f"Bearer {key}"}
        )
        assert response.status_code in (200, 404), response.text
        body: dict[str, Any] = response.json()
        if response.status_code == 200 and body["receipt_status"] != "none":
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("the receipt was never stored")


@pytest.mark.parametrize("mode", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_customer_verifies_who_served_the_request(
    mode: str,
    request: pytest.FixtureRequest,
    wallet_root: Path,
    redis_url: str,
    tmp_path: Path,
) -> None:
    database = billing_database(request, mode, tmp_path)
    assert database is not None
    async with stack(
        wallet_root, redis_url, miners={"prov": fast_engines()}, billing_db=database
    ) as running:
        assert running.settings is not None
        db = Database.from_url(database)
        billing = Billing.create(running.settings, resolve_catalog("dev"), db)
        try:
            other = await billing.accounts.create("someone else")
            await billing.accounts.grant(other.id, 10_000_000, actor="test", reason="t")
            other_key = (await billing.keys.create(other.id, "theirs")).secret

            raw = await running.client.chat.completions.with_raw_response.create(
                model=CHAT, messages=[{"role": "user", "content": "hello"}]
            )
            request_id = raw.headers["x-request-id"]
            async with httpx.AsyncClient(base_url=running.gateway_url) as http:
                body = await _provenance(http, running.api_key, request_id)
                miner = running.routes[0]
                assert body["object"] == "request" and body["id"] == request_id
                assert body["model"] == CHAT and body["status"] == "ok"
                assert body["miner"] == {"hotkey": miner.hotkey, "uid": miner.uid}
                assert body["receipt_status"] == "valid"
                receipt = body["receipt"]
                assert receipt["v"] == "sn19-receipt/1" and receipt["miner"] == miner.hotkey
                assert body["check"] is None  # not checked (yet)
                assert int(body["cost_micro"]) > 0 and body["key"]["name"]

                # Anyone can check the receipt offline, from the answer as saved.
                saved = tmp_path / "request.json"
                saved.write_text(json.dumps(body))
                verified = CliRunner().invoke(receipts, ["verify", str(saved)])
                assert verified.exit_code == 0, verified.output
                assert "valid: the miner signed this response" in verified.output
                assert miner.hotkey in verified.output
                forged = dict(receipt, sha256="0" * 64)
                refused = CliRunner().invoke(receipts, ["verify", "-"], input=json.dumps(forged))
                assert refused.exit_code == 1 and "INVALID" in refused.output
                junk = CliRunner().invoke(receipts, ["verify", "-"], input='{"x": 1}')
                assert junk.exit_code == 2

                # Another account's key: the request does not exist for it.
                theirs = await http.get(
                    f"/v1/requests/{request_id}", headers={"authorization": f"Bearer {other_key}"}
                )
                assert theirs.status_code == 404
                assert theirs.json()["error"]["code"] == "request_not_found"
                unknown = await http.get(
                    "/v1/requests/req_nope", headers={"authorization": f"Bearer {running.api_key}"}
                )
                assert unknown.status_code == 404
                anonymous = await http.get(f"/v1/requests/{request_id}")
                assert anonymous.status_code == 401

                # Once the checker scored the answer, the verdict is part of it.
                async with db.transaction() as session:
                    result = CheckResult(
                        task=CHAT,
                        miner_hotkey=miner.hotkey,
                        quality=0.93,
                        work=4,
                        response_time_s=0.1,
                        organic=True,
                        created_at=utcnow() - timedelta(seconds=1),
                    )
                    session.add(result)
                    await session.flush()
                    session.add(
                        CheckJobRecord(
                            job_id=f"job-{request_id}",
                            result_id=result.id,
                            task=CHAT,
                            kind="chat",
                            miner_hotkey=miner.hotkey,
                            organic=True,
                            reason="",
                            evidence={},
                            request_id=request_id,
                            receipt=json.dumps(receipt),
                        )
                    )
                checked = await _provenance(http, running.api_key, request_id)
                assert checked["check"]["passed"] is True
                assert checked["check"]["quality"] == pytest.approx(0.93)
        finally:
            await billing.aclose()
            await db.dispose()
