"""Schemathesis against a real gateway: every operation of its own ``/openapi.json``, valid and
invalid requests generated from the schema (fixed seed), over real HTTP, with billing on
(SQLite) in front of a real miner server (instant text, fake image and embedding engines). No
answer may be a 5xx, every error must be the OpenAI envelope with a ``code``, every answer must
carry ``x-request-id`` and ``openai-processing-ms`` and agree with the document, and the gateway
must log no traceback. The number of requests sent is printed (``-s``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from tests.integration.gateway.conftest import CHAT, EMBED, IMAGE, Stack, fast_engines, stack
from tests.support.db import create_sqlite_database, run_in_thread

EXAMPLES = 50  # per operation and mode
# The answers agree with the document (200 bodies, content types), and the gateway refuses
# what the document says is invalid.
SCHEMA_CHECKS = [
    checks.response_schema_conformance,
    checks.content_type_conformance,
    checks.negative_data_rejection,
]


NOTHING_TO_GET_WRONG = {
    "GET /v1/models",
    "GET /v1/billing/balance",
    "GET /healthz",
    "GET /metrics",
    "GET /openapi.json",
    "GET /docs",
}


@dataclass
class Findings:
    sent: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    no_negative: list[str] = field(default_factory=list)


def _check(response: requests.Response, findings: Findings, what: str) -> None:
    status = response.status_code
    findings.by_status[status] = findings.by_status.get(status, 0) + 1
    if status >= 500:
        findings.problems.append(f"{status} for {what}: {response.text[:300]}")
    elif status >= 400 and response.request.method != "HEAD":
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            findings.problems.append(f"{status} without the error envelope for {what}")
            return
        if not error.get("code"):
            findings.problems.append(f"{status} with no code for {what}: {error}")
    for header in ("x-request-id", "openai-processing-ms"):
        if header not in response.headers:
            findings.problems.append(f"no {header} on {status} for {what}")


def served_models(document: dict[str, Any]) -> dict[str, Any]:
    """The served document, with ``model`` drawn from the stack's models (a random name is a
    404 before anything else is looked at, so most valid requests would never reach a miner;
    the negative cases still send other names)."""
    models = {"enum": [CHAT, IMAGE, EMBED]}
    components = document["components"]["schemas"]
    for name in ("ChatCompletionRequest", "CompletionRequest", "EmbeddingRequest"):
        components[name]["properties"]["model"] = models
    components["ImageGenerationRequest"]["properties"]["model"] = {"enum": [IMAGE]}
    edit = document["paths"]["/v1/images/edits"]["post"]["requestBody"]["content"]
    edit["multipart/form-data"]["schema"]["properties"]["model"] = {"enum": [IMAGE]}
    return document


def fuzz(url: str, api_key: str) -> Findings:
    """Run every operation of the served schema, positive then negative (in a thread: the
    gateway and the miners are served by the test's event loop meanwhile)."""
    session = requests.Session()
    schema = schemathesis.openapi.from_dict(
        served_models(session.get(url + "/openapi.json").json())
    )
    findings = Findings()
    headers = {"Authorization": f"Bearer {api_key}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                response = case.call(base_url=url, session=session, headers=headers, timeout=30)
                findings.sent += 1
                what = case.as_curl_command(headers=headers)
                _check(response, findings, what)
                try:
                    case.validate_response(response, checks=SCHEMA_CHECKS, headers=headers)
                except AssertionError as failure:  # schemathesis' failures are AssertionErrors
                    findings.problems.append(f"{failure} for {what}"[:600])

            try:
                run()
            except Unsatisfiable:
                # Nothing to get wrong (no parameters, no body): no negative case exists.
                assert mode is GenerationMode.NEGATIVE, operation.label
                findings.no_negative.append(operation.label)
    return findings


class Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(self.format(record))


@pytest.fixture
def tracebacks() -> Iterator[Tracebacks]:
    handler = Tracebacks()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture(scope="module")
async def running(
    wallet_root: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    database = str(run_in_thread(create_sqlite_database, tmp_path_factory.mktemp("fuzzdb")))
    async with stack(
        wallet_root, redis_url, miners={"m1": fast_engines()}, billing_db=database
    ) as started:
        yield started


async def test_no_server_error_under_schemathesis(running: Stack, tracebacks: Tracebacks) -> None:
    findings = await asyncio.to_thread(fuzz, running.gateway_url, running.api_key)
    print(f"schemathesis sent {findings.sent} requests: {sorted(findings.by_status.items())}")
    for problem in findings.problems:
        print(problem)
    assert findings.problems == []
    assert tracebacks.records == []
    assert findings.sent >= 17 * EXAMPLES
    # Only operations with nothing to get wrong have no negative cases.
    assert set(findings.no_negative) <= NOTHING_TO_GET_WRONG, findings.no_negative
    assert any(200 <= status < 300 for status in findings.by_status)


CHAT_BODY = b'{"model": "sn19-tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}'
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763"
    "f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)
# (method, path, requests keyword arguments, status, error code or None): what fuzzing found.
FOUND: list[tuple[str, str, dict[str, Any], int, str | None]] = [
    ("GET", "/v1/billing/usage?end=0001-01-01", {}, 200, None),  # was an OverflowError (500)
    ("GET", "/v1/billing/usage?start=0001-01-01&end=0001-01-01", {}, 200, None),
    ("GET", "/v1/billing/usage?key_id=1646668353819751425744306176", {}, 400, "invalid_value"),
    ("GET", "/v1/billing/usage?start=null", {}, 400, "invalid_value"),  # was 200
    ("GET", "/v1/billing/usage?limit=null", {}, 400, "invalid_value"),
    (
        "POST",
        "/v1/chat/completions",
        {"data": CHAT_BODY, "headers": {"Content-Type": "text/plain"}},
        400,
        "invalid_content_type",
    ),  # was 200
    (
        "POST",
        "/v1/embeddings",
        {
            "data": b'{"model": "all-minilm-l6-v2", "input": "a"}',
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        400,
        "invalid_content_type",
    ),
    (
        "POST",
        "/v1/images/edits",
        {"files": {"image": ("a.png", PNG_1X1, "image/png")}, "data": {"prompt": "x", "n": "null"}},
        400,
        "invalid_value",
    ),  # was 200 (n read as "not sent")
    (
        "POST",
        "/v1/images/edits",
        {
            "files": {"image": ("a.png", PNG_1X1, "image/png")},
            "data": {"prompt": "x", "seed": "null"},
        },
        400,
        "invalid_value",
    ),
    ("POST", "/v1/billing/checkout", {"json": {"credits": 10}}, 404, "payments_not_enabled"),
    ("POST", "/v1/billing/stripe/webhook", {"json": {}}, 404, "payments_not_enabled"),  # was 503
]


@pytest.mark.parametrize(("method", "path", "options", "status", "code"), FOUND)
async def test_what_fuzzing_found_stays_fixed(
    running: Stack,
    tracebacks: Tracebacks,
    method: str,
    path: str,
    options: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    options = dict(options)
    headers = {"Authorization": f"Bearer {running.api_key}", **options.pop("headers", {})}
    response = await asyncio.to_thread(
        requests.request, method, running.gateway_url + path, headers=headers, timeout=30, **options
    )
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["error"]["code"] == code
    assert tracebacks.records == []
