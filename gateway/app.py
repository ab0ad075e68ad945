"""The gateway's composition root: ``create_app(settings, ...)`` → a Litestar app.

Nothing happens at import or in ``create_app`` beyond wiring: the catalog, Redis (the embedded
server when ``redis.url`` is empty), the route reader, the miner client and signer, live stats
(shared with the other replicas through Redis: ``core.miners.live``), token counters, telemetry
and the completion hub (with the receipt auditor, ``gateway.receipts``) are created in the
lifespan and closed there.
Keyword arguments replace any of them (tests, ``sn19 dev``). The app's own completion hub feeds
the checker a sample of finished requests (``gateway.checks``; an injected ``hooks`` hub gets
no sampler). ``extra_handlers`` are served beside the API: ``sn19.compose`` mounts the
dashboard there.

With ``billing.enabled`` the lifespan also opens the database and builds billing
(``gateway.billing_adapter.start_billing``): database API keys replace the static keys, every
request is rate-limited, held and settled, ``/v1/billing/*`` is served, and the hold sweeper
runs in the background. An injected ``authenticator`` / ``accounting`` still wins.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response
from litestar.di import Provide
from litestar.types import ControllerRouterHandler, Message, Scope
from opentelemetry.sdk.trace.export import SpanExporter

from core.checks import CheckQueue
from core.miners import Dispatcher, MinerClient, MinerStats, RawMinerClient
from core.miners.live import start_live_stats
from core.miners.signing import RequestSigner
from core.redis import EmbeddedRedis, create_redis
from core.settings import Settings
from core.shutdown import push_bounded
from core.telemetry import Telemetry
from core.tokens import load_task_counters
from gateway.accounting import Accounting, UnmeteredAccounting
from gateway.auth import Authenticator, StaticKeyAuthenticator
from gateway.billing.controller import BILLING_HANDLERS
from gateway.billing_adapter import check_billing_settings, start_billing
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
from gateway.models.controller import list_models, retrieve_model
from gateway.provenance import install_provenance
from gateway.receipts import install_receipt_auditor
from gateway.requests.controller import REQUEST_HANDLERS
from gateway.selection import RouteCache, RouteSource, Selector
from gateway.state import Gateway
from protocol.catalog import Catalog, resolve_catalog
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


async def _add_request_id(message: Message, scope: Scope) -> None:
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
    message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]


async def _open_redis(settings: Settings, stack: AsyncExitStack) -> Any:
    """Redis from ``redis.url``, or the embedded server when it is empty; closed by ``stack``."""
    url = settings.redis.url
    if not url:
        embedded = EmbeddedRedis(settings.data_path / "redis")
        url = await asyncio.to_thread(embedded.start)
        stack.callback(embedded.stop)
    client = create_redis(url, max_connections=settings.redis.max_connections)
    push_bounded(stack, "redis client", client.aclose)
    return client


def _count_contenders(gateway: Gateway, redis: Any, stack: AsyncExitStack) -> None:
    """Every miner attempt's outcome goes to its contender's counters (SPEC §3/§6) through a
    buffer flushed to Redis in the background (a last flush when the app stops)."""
    buffer = CounterBuffer(ContenderCounters.from_settings(redis, gateway.settings))
    gateway.contenders = buffer
    flusher = asyncio.get_running_loop().create_task(buffer.run())

    async def stop() -> None:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)

    push_bounded(stack, "contender counters", stop)


def create_app(
    settings: Settings,
    *,
    catalog: Catalog | None = None,
    redis: Any | None = None,
    routes: RouteSource | None = None,
    signer: RequestSigner | None = None,
    miner_client: MinerClient | None = None,
    stats: MinerStats | None = None,
    authenticator: Authenticator | None = None,
    accounting: Accounting | None = None,
    hooks: CompletionHub | None = None,
    span_exporter: SpanExporter | None = None,
    extra_handlers: Sequence[ControllerRouterHandler] = (),
) -> Litestar:
    holder = _Holder()
    gateway_settings = settings.gateway
    billing_on = settings.billing.enabled and (authenticator is None or accounting is None)
    if billing_on:
        check_billing_settings(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            the_catalog = catalog or resolve_catalog(settings.catalog)
            telemetry = Telemetry(settings.telemetry, span_exporter=span_exporter)
            stack.callback(telemetry.shutdown)
            the_redis = redis if redis is not None else await _open_redis(settings, stack)
            client = miner_client
            if client is None:
                the_signer = (
                    signer if signer is not None else await asyncio.to_thread(load_signer, settings)
                )
                client = RawMinerClient(
                    the_signer, connect_timeout=gateway_settings.connect_timeout_s
                )
                push_bounded(stack, "miner client", client.close)
            the_stats = stats or await start_live_stats(settings, the_redis, stack)
            route_cache = RouteCache(
                routes or RouteReader(the_redis, prefix=settings.redis.key_prefix, cache_s=0.0)
            )
            refresher = asyncio.get_running_loop().create_task(route_cache.run())
            stack.callback(refresher.cancel)
            the_authenticator: Authenticator = authenticator or StaticKeyAuthenticator(
                key.get() for key in gateway_settings.api_keys
            )
            the_accounting: Accounting = accounting or UnmeteredAccounting()
            wired = None
            if billing_on:
                wired = await start_billing(settings, the_catalog, the_redis, stack)
                the_authenticator = authenticator or wired.authenticator
                the_accounting = accounting or wired.accounting
            hub = hooks
            if hub is None:
                hub = CompletionHub()
                install_check_sampler(
                    hub, CheckQueue(the_redis, prefix=settings.redis.key_prefix), settings
                )
            install_receipt_auditor(hub, telemetry.registry)
            if wired is not None:
                install_provenance(hub, wired.billing.usage.receipts)
            hub.start()
            push_bounded(stack, "completion hub", hub.stop)
            gateway = Gateway(
                settings=settings,
                catalog=the_catalog,
                telemetry=telemetry,
                authenticator=the_authenticator,
                accounting=the_accounting,
                hooks=hub,
                selector=Selector(
                    route_cache, the_stats, route_grace_s=gateway_settings.route_grace_s
                ),
                dispatcher=Dispatcher(client, the_stats, tracer=telemetry.tracer("sn19.miners")),
                stats=the_stats,
                counters=await asyncio.to_thread(load_task_counters, the_catalog),
                redis=the_redis,
                billing=wired.api if wired is not None else None,
                billing_system=wired.billing if wired is not None else None,
                db=wired.db if wired is not None else None,
            )
            push_bounded(stack, "background work", gateway.drain)
            _count_contenders(gateway, the_redis, stack)
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

    return Litestar(
        route_handlers=[
            chat_completions,
            completions,
            embeddings,
            generations,
            edits_handler(gateway_settings.max_upload_bytes),
            list_models,
            retrieve_model,
            healthz,
            metrics,
            *BILLING_HANDLERS,
            *REQUEST_HANDLERS,
            *extra_handlers,
        ],
        dependencies={"gateway": Provide(provide_gateway, sync_to_thread=False)},
        exception_handlers={Exception: handle_exception},
        before_send=[_add_request_id],
        lifespan=[lifespan],
        request_max_body_size=gateway_settings.max_body_bytes,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
