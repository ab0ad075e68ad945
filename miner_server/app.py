"""The miner server's composition root: ``create_app(settings)``.

It resolves the catalog and the tasks to serve, loads the wallet's hotkey once, builds one engine
per task (the catalog's, or the ``[task."<id>"].engine`` override) and wires the routes. Engines
are started in the app's lifespan and closed after it. Engines passed in ``engines`` (tests,
embedding) belong to the caller: the app uses them as they are and neither starts nor closes them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, cast

from litestar import Litestar

from inference.base import EmbeddingEngine, Engine, ImageEngine, TextEngine
from inference.registry import load_engine
from miner_server.auth import Verifier
from miner_server.capacity import StakeShareCapacity, StaticCapacity, TaskOffer
from miner_server.deps import dependencies
from miner_server.receipts import ReceiptSigner
from miner_server.responses import handle_error
from miner_server.routes import ROUTES
from miner_server.settings import DEFAULT_CONCURRENCY, MinerSettings, WalletSettings
from miner_server.stakes import Gate, OpenGate, gate_from_settings
from miner_server.state import Limiter, MinerState, Served
from protocol.catalog import Catalog, Task, resolve_catalog
from protocol.config import ConfigError

logger = logging.getLogger(__name__)


def create_app(
    settings: MinerSettings,
    *,
    engines: Mapping[str, Engine] | None = None,
    gate: Gate | None = None,
) -> Litestar:
    """``gate`` replaces the stake gate built from ``settings.chain`` (tests, embedding)."""
    catalog = resolve_catalog(settings.catalog)
    keypair = load_keypair(settings.wallet)
    state = build_state(
        settings,
        served_tasks(catalog, settings),
        keypair.ss58_address,
        engines or {},
        keypair=keypair,
        gate=gate or gate_from_settings(settings.chain),
    )

    @asynccontextmanager
    async def run_engines(app: Litestar) -> AsyncIterator[None]:
        del app
        await state.gate.start()
        try:
            await _start(state.owned_engines)
        except BaseException:
            await state.gate.close()
            raise
        logger.info(
            "sn19 miner ready: hotkey %s, tasks %s", state.hotkey, ", ".join(state.task_ids)
        )
        try:
            yield
        finally:
            await _close(state.owned_engines)
            await state.gate.close()

    return Litestar(
        route_handlers=ROUTES,
        dependencies=dependencies(state),
        exception_handlers={Exception: handle_error},
        lifespan=[run_engines],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )


def served_tasks(catalog: Catalog, settings: MinerSettings) -> list[Task]:
    """The tasks named in ``settings.tasks`` (every enabled task when empty)."""
    if not settings.tasks:
        return list(catalog.enabled())
    tasks: list[Task] = []
    for task_id in settings.tasks:
        task = catalog.get(task_id)
        if task is None:
            known = ", ".join(task.id for task in catalog.enabled())
            raise ConfigError(
                f"tasks: {task_id!r} is not an enabled task of {catalog.name} ({known})"
            )
        tasks.append(task)
    return tasks


def load_keypair(wallet: WalletSettings) -> Any:
    """The wallet's hotkey keypair, loaded once (the private key must be readable: it signs
    receipts)."""
    import bittensor as bt

    kwargs = {"path": str(Path(wallet.path).expanduser())} if wallet.path else {}
    try:
        return bt.Wallet(name=wallet.name, hotkey=wallet.hotkey, **kwargs).hotkey
    except OSError as exc:
        raise ConfigError(
            f"wallet: cannot load hotkey {wallet.name}/{wallet.hotkey}: {exc}"
        ) from exc


def build_state(
    settings: MinerSettings,
    tasks: list[Task],
    hotkey: str,
    engines: Mapping[str, Engine],
    *,
    keypair: Any = None,
    gate: Gate | None = None,
) -> MinerState:
    """``keypair`` signs receipts (without one, responses carry none); ``gate`` admits callers
    (without one, everyone with a valid signature)."""
    offers: dict[str, TaskOffer] = {}
    policy = StakeShareCapacity if settings.capacity_policy == "stake_share" else StaticCapacity
    state = MinerState(
        hotkey=hotkey,
        verifier=Verifier(
            hotkey, max_age_s=settings.auth.max_age_s, allowed_skew_s=settings.auth.allowed_skew_s
        ),
        capacity=policy(offers, version=_version()),
        max_body_bytes=settings.max_body_bytes,
        gate=gate or OpenGate(),
        receipts=ReceiptSigner(keypair) if keypair is not None else None,
    )
    for task in tasks:
        overrides = settings.for_task(task.id)
        engine = engines.get(task.id)
        if engine is None:
            engine = load_engine(task, overrides.engine, device=settings.device or None)
            state.owned_engines.append(engine)
        if engine.kind != task.kind:
            raise ConfigError(
                f"task {task.id}: a {engine.kind} engine cannot serve a {task.kind} task"
            )
        concurrency = overrides.concurrency or DEFAULT_CONCURRENCY[task.kind]
        limiter = Limiter(task.id, concurrency)
        if task.kind == "chat":
            state.chat[task.id] = Served(task, cast("TextEngine", engine), limiter)
        elif task.kind == "image":
            state.image[task.id] = Served(task, cast("ImageEngine", engine), limiter)
        else:
            state.embedding[task.id] = Served(task, cast("EmbeddingEngine", engine), limiter)
        volume = task.max_capacity if overrides.capacity is None else overrides.capacity
        offers[task.id] = TaskOffer(task, min(volume, task.max_capacity), concurrency)
    return state


async def _start(engines: list[Engine]) -> None:
    """Start engines one after another: loading models concurrently races inside transformers'
    lazy imports and stacks the peak memory of every load."""
    for engine in engines:
        try:
            await engine.start()
        except BaseException:
            await _close(engines)
            raise


async def _close(engines: list[Engine]) -> None:
    for engine in reversed(engines):
        try:
            await engine.close()
        except Exception:
            logger.exception("closing an engine failed")


def _version() -> str | None:
    try:
        return metadata.version("sn19")
    except metadata.PackageNotFoundError:
        return None
