"""The gateway's composition root: ``create_app(settings, ...)`` → a Litestar app.

Nothing happens at import or in ``create_app`` beyond wiring. What the process shares with the
dashboard (catalog, Redis, live miner stats, and with ``billing.enabled`` the database and
billing: ``gateway.resources.Shared``) is given by the process's composition root
(``sn19.compose``), or opened by this app's lifespan when none is given. The lifespan builds
the rest and closes it: the route reader, the miner client and signer, token counters,
telemetry, the contender counters and the completion hub (the receipt auditor,
``gateway.receipts``, and the checker's organic sampler, ``gateway.checks``; an injected
``hooks`` hub gets no sampler). Keyword arguments replace any of them (tests, ``sn19 dev``).
``extra_handlers`` are served beside the API: ``sn19.compose`` mounts the dashboard there.

With billing on, database API keys replace the static keys and every request is admitted and
settled by ``billing.access`` (through ``gateway.exchange``); ``/v1/billing/*`` is served. An
injected ``authenticator`` / ``access`` still wins.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.types import (
    ControllerRouterHandler,
    LifeSpanReceive,
    LifeSpanScope,
    LifeSpanSend,
    Message,
    Receive,
    Scope,
    Send,
)
from opentelemetry.sdk.trace.export import SpanExporter

from billing import Access, OpenAccess
from core.checks import CheckQueue
from core.miners import Dispatcher, MinerClient, MinerStats, RawMinerClient
from core.miners.signing import RequestSigner
from core.miners.waiting import OrganicWaiting
from core.settings import Settings
from core.shutdown import push_bounded
from core.telemetry import Telemetry
from core.tokens import load_task_counters
from gateway.auth import Authenticator, BillingAuthenticator, StaticKeyAuthenticator
from gateway.billing.controller import BILLING_HANDLERS
from gateway.chat.controller import chat_completions
from gateway.checks import install_check_sampler
from gateway.completions.controller import completions
from gateway.context import context_of
from gateway.embeddings.controller import embeddings
from gateway.errors import account_error, as_app_error, render_error
from gateway.health import healthz, metrics
from gateway.hooks import CompletionHub
from gateway.ids import request_id_from
from gateway.images.controller import edits_handler, generations
from gateway.images.files import image_file
from gateway.metrics import BillingCollector
from gateway.models.controller import list_models, retrieve_model
from gateway.openapi.controller import OPENAPI_HANDLERS
from gateway.provenance import install_provenance
from gateway.receipts import install_receipt_auditor
from gateway.requests.controller import REQUEST_HANDLERS
from gateway.resources import Shared, check_settings, open_shared
from gateway.responses.controller import responses
from gateway.selection import RouteCache, RouteSource, Selector
from gateway.slots import SlotQueue
from gateway.state import Gateway
from gateway.transport import Transport
from protocol.catalog import Catalog
from protocol.config import ConfigError
from scoring import ContenderCounters, CounterBuffer
from scoring.routes import RouteReader

log = logging.getLogger(__name__)


class _Holder:
    gateway: Gateway | None = None

    def get(self) -> Gateway:
        if self.gateway is None:
            raise RuntimeError("the gateway is not started (lifespan not run)")
        return self.gateway


def load_signer(settings: Settings) -> RequestSigner:
    """The validator hotkey from ``settings.wallet``, loaded once."""
    import bittensor as bt

    wallet = bt.Wallet(
        name=settings.wallet.name, hotkey=settings.wallet.hotkey, path=settings.wallet_path
    )
    try:
        return RequestSigner.from_wallet(wallet)
    except Exception as exc:
        raise ConfigError(
            f"wallet: cannot load the validator hotkey {settings.wallet.name}/"
            f"{settings.wallet.hotkey} under {settings.wallet_path}: {exc}"
        ) from exc


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


ARRIVED = "sn19_arrived"


class GatewayApp(Litestar):
    """The Litestar app, noting when each request arrived (for ``openai-processing-ms``)."""

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        if scope["type"] == ScopeType.HTTP:
            scope.setdefault("state", {})[ARRIVED] = time.monotonic()  # type: ignore[typeddict-item]
        await super().__call__(scope, receive, send)


async def _add_response_headers(message: Message, scope: Scope) -> None:
    """``x-request-id`` and ``openai-processing-ms`` on every response, errors included."""
    if message["type"] != "http.response.start":
        return
    state: dict[str, Any] = scope.setdefault("state", {})
    ctx = context_of(state)
    if ctx is not None:
        request_id = ctx.request_id
    else:
        request_id = state.get("sn19_request_id") or request_id_from(
            _header(scope, b"x-request-id")
        )
        state["sn19_request_id"] = request_id
    headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
    arrived = state.get(ARRIVED)
    if arrived is not None:
        elapsed_ms = int((time.monotonic() - arrived) * 1000)
        headers.append((b"openai-processing-ms", str(elapsed_ms).encode()))
    message["headers"] = headers


def _count_contenders(settings: Settings, redis: Any, stack: AsyncExitStack) -> CounterBuffer:
    """Every miner attempt's outcome goes to its contender's counters (SPEC §3/§6) through a
    buffer flushed to Redis in the background (a last flush when the app stops)."""
    buffer = CounterBuffer(ContenderCounters.from_settings(redis, settings))
    flusher = asyncio.get_running_loop().create_task(buffer.run())

    async def stop() -> None:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)

    push_bounded(stack, "contender counters", stop)
    return buffer


def create_app(
    settings: Settings,
    *,
    shared: Shared | None = None,
    catalog: Catalog | None = None,
    redis: Any | None = None,
    routes: RouteSource | None = None,
    signer: RequestSigner | None = None,
    miner_client: MinerClient | None = None,
    stats: MinerStats | None = None,
    authenticator: Authenticator | None = None,
    access: Access | None = None,
    hooks: CompletionHub | None = None,
    span_exporter: SpanExporter | None = None,
    extra_handlers: Sequence[ControllerRouterHandler] = (),
) -> Litestar:
    """``catalog`` / ``redis`` / ``stats`` replace parts of the ``Shared`` this app opens when
    none is given."""
    holder = _Holder()
    gateway_settings = settings.gateway
    if shared is None:
        check_settings(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            common = shared
            if common is None:
                common = await stack.enter_async_context(
                    open_shared(settings, catalog=catalog, redis=redis, stats=stats)
                )
            telemetry = Telemetry(settings.telemetry, span_exporter=span_exporter)
            stack.callback(telemetry.shutdown)
            client = miner_client
            if client is None:
                the_signer = (
                    signer if signer is not None else await asyncio.to_thread(load_signer, settings)
                )
                client = RawMinerClient(
                    the_signer, connect_timeout=gateway_settings.connect_timeout_s
                )
                push_bounded(stack, "miner client", client.close)
            route_cache = RouteCache(
                routes or RouteReader(common.redis, prefix=settings.redis.key_prefix, cache_s=0.0)
            )
            refresher = asyncio.get_running_loop().create_task(route_cache.run())
            stack.callback(refresher.cancel)
            billing = common.billing
            the_authenticator: Authenticator = authenticator or (
                BillingAuthenticator(billing.authenticator)
                if billing is not None
                else StaticKeyAuthenticator(key.get() for key in gateway_settings.api_keys)
            )
            the_access: Access = access or (billing.access if billing is not None else OpenAccess())
            hub = hooks
            if hub is None:
                hub = CompletionHub()
                install_check_sampler(
                    hub, CheckQueue(common.redis, prefix=settings.redis.key_prefix), settings
                )
            install_receipt_auditor(hub, telemetry.registry)
            if billing is not None:
                install_provenance(hub, billing.usage.receipts)
                service = billing.service
                telemetry.registry.register(BillingCollector(lambda: service.holds_expired))
            hub.start()
            push_bounded(stack, "completion hub", hub.stop)
            slots = SlotQueue(
                size=gateway_settings.queue_size,
                per_key=gateway_settings.queue_per_key,
                retry_after_s=gateway_settings.retry_after_s,
                registry=telemetry.registry,
                flag=OrganicWaiting(common.redis, settings.redis.key_prefix),
            )
            push_bounded(stack, "slot queue", slots.close)
            gateway = Gateway(
                settings=settings,
                catalog=common.catalog,
                telemetry=telemetry,
                authenticator=the_authenticator,
                access=the_access,
                hooks=hub,
                selector=Selector(
                    route_cache, common.live, route_grace_s=gateway_settings.route_grace_s
                ),
                slots=slots,
                dispatcher=Dispatcher(client, common.live, tracer=telemetry.tracer("sn19.miners")),
                stats=common.live,
                counters=await asyncio.to_thread(load_task_counters, common.catalog),
                redis=common.redis,
                contenders=_count_contenders(settings, common.redis, stack),
                billing=billing,
            )
            push_bounded(stack, "background work", gateway.drain)
            holder.gateway = gateway
            app.state.gateway = gateway
            try:
                yield
            finally:
                holder.gateway = None

    def provide_gateway() -> Gateway:
        return holder.get()

    def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
        error = as_app_error(request, exc)
        ctx = context_of(request.scope.get("state", {}))
        gateway = holder.gateway
        if ctx is not None:
            account_error(ctx, error)
        elif gateway is not None:
            gateway.metrics.request("unmatched", "-", error.status_code, 0.0)
        if error.status_code >= 500 and error.status_code != 503:
            log.warning(
                "%s %s -> %s %s", request.method, request.url.path, error.status_code, error.message
            )
        return render_error(error)

    app = GatewayApp(
        route_handlers=[
            chat_completions,
            responses,
            completions,
            embeddings,
            generations,
            edits_handler(gateway_settings.max_upload_bytes),
            image_file,
            list_models,
            retrieve_model,
            healthz,
            metrics,
            *BILLING_HANDLERS,
            *REQUEST_HANDLERS,
            *OPENAPI_HANDLERS,
            *extra_handlers,
        ],
        dependencies={"gateway": Provide(provide_gateway, sync_to_thread=False)},
        exception_handlers={Exception: handle_exception},
        before_send=[_add_response_headers],
        lifespan=[lifespan],
        request_max_body_size=gateway_settings.max_body_bytes,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
    # CORS and gzip wrap the whole app, outside Litestar's routing and exception layer (as
    # Litestar's own CORS middleware is placed): one layer per request, not one per route.
    app.asgi_handler = Transport(
        origins=gateway_settings.cors_origins,
        gzip_min_bytes=gateway_settings.gzip_min_bytes,
        max_body_bytes=gateway_settings.max_body_bytes,
    ).wrap(app.asgi_handler)
    return app
