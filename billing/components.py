"""Wiring billing from settings: one place that builds every billing object a process needs.

A long-running process (the gateway) runs billing with ``running_billing(settings, catalog, db,
redis)``: the hot path's own pools, the key-invalidation listener and the hold sweeper start on
entry; on exit the sweeper stops, the settles still in flight finish, and everything closes,
each step bounded (``core.shutdown``). Requests go through ``Billing.access``
(``billing.access``). CLI commands build the same object with ``Billing.create`` (usually
without starting the listener) or ``open_billing``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.asyncio import Redis

from billing.access import BilledAccess
from billing.accounts import AccountService
from billing.api import BillingApi
from billing.fastpath import DriverPool
from billing.keys.auth import KeyAuthenticator, KeyCache
from billing.keys.service import KeyService
from billing.keys.store import KeyHasher
from billing.payments.stripe import StripeClientGateway, StripeGateway
from billing.payments.webhooks import StripeBilling
from billing.price_book import PriceBook
from billing.ratelimit import RateLimiter
from billing.service import BillingService
from billing.sweeper import run_sweeper
from billing.usage import UsageService
from core.db.engine import Database
from core.redis import create_redis
from core.settings import Settings
from core.shutdown import push_bounded
from protocol.catalog import Catalog, resolve_catalog


def checkout_urls(settings: Settings) -> tuple[str, str]:
    """Where Stripe sends the customer after paying / cancelling."""
    base = settings.gateway.public_url or f"http://{settings.gateway.host}:{settings.gateway.port}"
    base = base.rstrip("/")
    success = settings.billing.checkout_success_url or f"{base}/dashboard/billing?checkout=success"
    cancel = settings.billing.checkout_cancel_url or f"{base}/dashboard/billing?checkout=cancel"
    return success, cancel


def stripe_gateway_from_settings(settings: Settings) -> StripeGateway | None:
    billing = settings.billing
    if not billing.stripe_api_key or not billing.stripe_webhook_secret:
        return None
    return StripeClientGateway(
        billing.stripe_api_key.get(),
        billing.stripe_webhook_secret.get(),
        api_base=billing.stripe_api_base,
        tolerance_s=billing.webhook_tolerance_s,
    )


@dataclass
class Billing:
    db: Database
    hasher: KeyHasher
    cache: KeyCache | None
    prices: PriceBook
    service: BillingService
    keys: KeyService
    accounts: AccountService
    usage: UsageService
    authenticator: KeyAuthenticator
    # None without Redis: then no rate limits are enforced.
    limiter: RateLimiter | None
    # None when Stripe is not configured (checkout and webhook answer 503).
    stripe: StripeBilling | None
    api: BillingApi
    # The gateway's seam: rate limits, the hold before dispatch, the settle after.
    access: BilledAccess
    # Billing.create(fast_path=True) on PostgreSQL: the hot path's own pools.
    fast_pools: list[DriverPool] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        settings: Settings,
        catalog: Catalog,
        db: Database,
        redis: Redis | None = None,
        *,
        stripe_gateway: StripeGateway | None = None,
        fast_path: bool = False,
    ) -> Billing:
        """``fast_path`` (the gateway): on PostgreSQL, per-request holds and settles get their
        own asyncpg pools (``billing.fastpath.DriverPool``, closed by ``aclose``). Holds commit
        durably; settles and releases with ``synchronous_commit = off``: they do not wait for
        the disk, and hold the account's row lock that much shorter. If the database server
        crashes, the last fraction of a second of settles may be lost: their holds stay open
        and the sweeper releases them (those requests are not charged; the books still add
        up). Nothing is ever charged twice or overdrawn."""
        cfg = settings.billing
        hasher = KeyHasher.from_settings(settings)
        prefix = settings.redis.key_prefix
        cache = (
            KeyCache(
                redis, prefix, ttl_s=cfg.auth_redis_ttl_s, negative_ttl_s=cfg.auth_negative_ttl_s
            )
            if redis is not None
            else None
        )
        prices = PriceBook(db, catalog, ttl_s=cfg.price_cache_ttl_s)
        accounts = AccountService(db, cache)
        usage = UsageService(db)
        gateway = stripe_gateway or stripe_gateway_from_settings(settings)
        stripe = None
        if gateway is not None:
            success, cancel = checkout_urls(settings)
            stripe = StripeBilling(
                db,
                gateway,
                currency=cfg.currency,
                credit_price_cents=cfg.credit_price_cents,
                min_credits=cfg.checkout_min_credits,
                max_credits=cfg.checkout_max_credits,
                success_url=success,
                cancel_url=cancel,
            )
        pools: list[DriverPool] = []
        if fast_path and db.dialect == "postgresql":
            pools = [
                DriverPool(settings.database_url, settings.database),
                DriverPool(settings.database_url, settings.database, durable=False),
            ]
        service = BillingService(
            db,
            prices,
            hold_grace_s=cfg.hold_grace_s,
            fast=pools[0] if pools else None,
            fast_close=pools[1] if pools else None,
        )
        authenticator = KeyAuthenticator(
            db,
            hasher,
            cache,
            local_ttl_s=cfg.auth_cache_ttl_s,
            negative_ttl_s=cfg.auth_negative_ttl_s,
        )
        limiter = RateLimiter(redis, prefix) if redis is not None else None
        return cls(
            db=db,
            hasher=hasher,
            cache=cache,
            prices=prices,
            service=service,
            keys=KeyService(
                db, hasher, cache, default_rpm=cfg.default_rpm, default_tpm=cfg.default_tpm
            ),
            accounts=accounts,
            usage=usage,
            authenticator=authenticator,
            limiter=limiter,
            stripe=stripe,
            api=BillingApi(
                accounts,
                usage,
                stripe,
                credit_price_cents=cfg.credit_price_cents,
                currency=cfg.currency,
            ),
            access=BilledAccess(authenticator, service, limiter),
            fast_pools=pools,
        )

    async def start(self) -> None:
        await self.authenticator.start()

    async def aclose(self) -> None:
        await self.authenticator.aclose()
        for pool in self.fast_pools:
            await pool.close()


@contextlib.asynccontextmanager
async def running_billing(
    settings: Settings, catalog: Catalog, db: Database, redis: Redis | None
) -> AsyncIterator[Billing]:
    """Billing for a long-running process (the gateway), with its fast path, key listener and
    hold sweeper (every replica runs one; they are safe together)."""
    async with contextlib.AsyncExitStack() as stack:
        billing = Billing.create(settings, catalog, db, redis, fast_path=True)
        await billing.start()
        push_bounded(stack, "billing", billing.aclose)
        stop = asyncio.Event()
        sweeper = asyncio.get_running_loop().create_task(
            run_sweeper(billing.service, interval_s=settings.billing.sweep_interval_s, stop=stop),
            name="billing-hold-sweeper",
        )

        async def stop_sweeper() -> None:
            stop.set()
            try:
                await asyncio.wait_for(sweeper, 10)
            except (TimeoutError, asyncio.CancelledError):
                sweeper.cancel()

        push_bounded(stack, "hold sweeper", stop_sweeper, timeout_s=15.0)
        # Last in, first out: the settles still running are waited for, then the batches.
        push_bounded(stack, "billing batches", billing.service.drain, timeout_s=15.0)
        push_bounded(stack, "pending settles", billing.access.drain, timeout_s=15.0)
        yield billing


@contextlib.asynccontextmanager
async def open_billing(
    settings: Settings, *, use_redis: bool = True, check_schema: bool = True
) -> AsyncIterator[Billing]:
    """Billing for a short-lived process (the CLI): its own engine and Redis client, closed on
    exit. Raises ``SchemaOutdated`` when the database is not at the migrations' head."""
    from core.db.migrate import require_head

    if check_schema:
        await require_head(settings.database_url)
    db = Database.from_url(settings.database_url, settings.database)
    redis = (
        create_redis(settings.redis.url, max_connections=4)
        if use_redis and settings.redis.url
        else None
    )
    try:
        yield Billing.create(settings, resolve_catalog(settings.catalog), db, redis)
    finally:
        await db.dispose()
        if redis is not None:
            await redis.aclose()
