"""HTTP-level behaviour: auth, error envelopes for every status, request ids, health, metrics,
tracing and the completion hook."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.hooks import CompletedRequest
from tests.support.fake_miner import Canned
from tests.support.gateway import API_KEY, CHAT, gateway
from tests.unit.gateway.conftest import ok_chat

CHAT_REQUEST = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic abc"},
        {"Authorization": f"bearer{API_KEY}"},
        {"x-api-key": "nope"},
    ],
)
async def test_auth_failures_are_401_envelopes(tmp: Path, headers: dict[str, str]) -> None:
    async with gateway(tmp, ok_chat()) as gw:
        response = await gw.client.post("/v1/chat/completions", json=CHAT_REQUEST, headers=headers)
        models = await gw.client.get("/v1/models", headers=headers)
    for answer in (response, models):
        assert answer.status_code == 401
        error = answer.json()["error"]
        assert error["code"] == "invalid_api_key"
        assert error["type"] == "invalid_request_error"
        assert answer.headers["x-request-id"]


async def test_auth_comes_before_validation(tmp: Path) -> None:
    async with gateway(tmp, ok_chat()) as gw:
        response = await gw.client.post("/v1/chat/completions", content=b"{")
    assert response.status_code == 401


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
async def test_key_headers_accepted(tmp: Path, scheme: str) -> None:
    async with gateway(tmp, ok_chat()) as gw:
        for headers in (
            {"Authorization": f"{scheme} {API_KEY}"},
            {"api-key": API_KEY},
            {"x-api-key": API_KEY},
        ):
            response = await gw.client.post(
                "/v1/chat/completions", json=CHAT_REQUEST, headers=headers
            )
            assert response.status_code == 200, response.text


async def test_unknown_route_and_method(tmp: Path) -> None:
    async with gateway(tmp, ok_chat()) as gw:
        missing = await gw.post("/v1/nothing", {})
        wrong = await gw.client.get("/v1/chat/completions")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_url"
    assert missing.headers["x-request-id"]
    assert wrong.status_code == 405
    assert wrong.json()["error"]["type"] == "invalid_request_error"
    assert "post" in wrong.headers.get("allow", "").lower()


async def test_body_over_the_limit_is_413(tmp: Path) -> None:
    big = {"model": CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    async with gateway(tmp, ok_chat(), max_body_bytes=2048) as gw:
        response = await gw.post("/v1/chat/completions", big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert response.headers["x-should-retry"] == "false"


async def test_request_id_and_processing_time_on_every_response(tmp: Path) -> None:
    """``x-request-id`` and ``openai-processing-ms`` on answers and errors alike, once each."""
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with gateway(tmp, ok_chat()) as harness:
        client = harness.client
        responses = [
            await client.get("/v1/models", headers=auth),
            await client.get("/v1/models/nope", headers=auth),
            await client.get("/v1/nowhere"),
            await client.delete("/v1/models"),
            await client.get("/healthz"),
            await client.get("/openapi.json"),
            await harness.post("/v1/chat/completions", CHAT_REQUEST),
            await harness.post("/v1/chat/completions", {**CHAT_REQUEST, "n": 99}),
            await harness.post("/v1/chat/completions", CHAT_REQUEST, headers={"Authorization": ""}),
            await harness.post("/v1/chat/completions", {**CHAT_REQUEST, "stream": True}),
        ]
    assert [r.status_code for r in responses] == [200, 404, 404, 405, 200, 200, 200, 400, 401, 200]
    for response in responses:
        for name in ("x-request-id", "openai-processing-ms"):
            assert len(response.headers.get_list(name)) == 1, (response.url, name)
        assert int(response.headers["openai-processing-ms"]) >= 0


async def test_request_id_accepted_when_sane(tmp: Path) -> None:
    async with gateway(tmp, ok_chat()) as gw:
        kept = await gw.post(
            "/v1/chat/completions", CHAT_REQUEST, headers={"x-request-id": "client-id.42"}
        )
        replaced = await gw.post(
            "/v1/chat/completions",
            CHAT_REQUEST,
            headers={"x-request-id": "bad id\twith spaces" + "x" * 200},
        )
    assert kept.headers["x-request-id"] == "client-id.42"
    assert replaced.headers["x-request-id"].startswith("req_")


async def test_bug_is_500_without_details(tmp: Path) -> None:
    def broken(url: str, path: str, body: bytes) -> Canned:
        raise ZeroDivisionError("secret detail")

    async with gateway(tmp, broken) as gw:
        response = await gw.post("/v1/chat/completions", CHAT_REQUEST)
    assert response.status_code == 500
    assert "secret" not in response.text
    assert response.json()["error"]["type"] == "api_error"
    assert response.headers["x-request-id"]


async def test_healthz_and_metrics_are_unauthenticated(tmp: Path) -> None:
    async with gateway(tmp, ok_chat()) as gw:
        await gw.post("/v1/chat/completions", CHAT_REQUEST)
        await gw.post("/v1/chat/completions", {"model": "nope", "messages": []})
        health = await gw.client.get("/healthz")
        metrics = await gw.client.get("/metrics")
    assert health.json() == {"status": "ok", "redis": True}
    text = metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")
    assert (
        'sn19_gateway_requests_total{model="sn19-tiny-chat",route="/v1/chat/completions",'
        'status="200"} 1.0' in text
    )
    assert 'status="400"' in text or 'status="404"' in text
    assert "sn19_gateway_miner_attempts_total" in text
    assert "sn19_gateway_overhead_seconds_bucket" in text
    assert "sn19_gateway_time_to_first_token_seconds_count" in text
    assert 'sn19_gateway_completion_tokens_total{model="sn19-tiny-chat"} 4.0' in text


async def test_two_apps_in_one_process_have_their_own_metrics(tmp: Path) -> None:
    async with gateway(tmp, ok_chat()) as first, gateway(tmp / "b", ok_chat()) as second:
        await first.post("/v1/chat/completions", CHAT_REQUEST)
        one = (await first.client.get("/metrics")).text
        two = (await second.client.get("/metrics")).text
    assert 'status="200"} 1.0' in one
    assert 'status="200"' not in two


async def test_spans_per_request_and_attempt(tmp: Path) -> None:
    exporter = InMemorySpanExporter()
    async with gateway(tmp, ok_chat(), span_exporter=exporter) as gw:
        await gw.post("/v1/chat/completions", CHAT_REQUEST)
        await gw.post("/v1/chat/completions", {**CHAT_REQUEST, "stream": True})
    spans = exporter.get_finished_spans()
    requests = [s for s in spans if s.name == "gateway.request"]
    attempts = [s for s in spans if s.name == "miner.attempt"]
    assert len(requests) == 2 and len(attempts) == 2
    for attempt in attempts:
        assert attempt.parent is not None
        assert attempt.parent.span_id in {r.context.span_id for r in requests}
        assert attempt.attributes["sn19.task"] == CHAT
        assert attempt.attributes["sn19.outcome"] == "ok"
        assert attempt.attributes["sn19.miner.uid"] in (1, 2, 3)
        assert attempt.attributes["sn19.ttft_s"] >= 0


async def test_completion_hook_gets_the_text_output(tmp: Path) -> None:
    received: list[CompletedRequest] = []

    async def subscriber(item: CompletedRequest) -> None:
        received.append(item)

    async with gateway(tmp, ok_chat(3)) as gw:
        gw.hooks.subscribe(subscriber)
        await gw.post("/v1/chat/completions", CHAT_REQUEST)
        await gw.post("/v1/chat/completions", {**CHAT_REQUEST, "stream": True})
        for _ in range(50):
            if len(received) == 2:
                break
            await asyncio.sleep(0.01)
    assert len(received) == 2
    first = received[0]
    assert first.task_id == CHAT and first.kind == "chat" and first.outcome == "ok"
    assert first.result.choices[0].token_ids == [100, 101, 102]
    assert first.result.choices[0].logprobs == pytest.approx([0.0, -0.1, -0.2])
    assert isinstance(first.miner_request.seed, int)
    assert first.timings.attempts == 1 and first.timings.ttft_s is not None
