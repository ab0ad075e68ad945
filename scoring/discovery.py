"""Discovery: read the metagraph, ask every serving neuron for its capacity, and turn the answers
into routes (one per miner × task it offers). The period machinery (contenders, quotas, scores)
builds on the same answers."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import msgspec

from core.chain import Metagraph
from protocol.catalog import Catalog
from protocol.chainfile import Neuron
from protocol.miner import CapacityRequest, CapacityResponse
from scoring.routes import MinerRoute

log = logging.getLogger(__name__)

CAPACITY_PATH = "/v1/capacity"
MAX_CAPACITY_BODY = 256 * 1024


class SignedPoster(Protocol):
    """The part of `core.miners.MinerClient` discovery needs: one signed POST."""

    async def post(
        self, url: str, path: str, body: bytes, *, receiver: str, timeout: float
    ) -> tuple[int, bytes]: ...


class CapacityAnswer(msgspec.Struct, frozen=True):
    neuron: Neuron
    response: CapacityResponse | None
    error: str | None = None


async def fetch_capacity(
    client: SignedPoster, neuron: Neuron, request_body: bytes, *, timeout: float
) -> CapacityAnswer:
    if neuron.axon_url is None:
        return CapacityAnswer(neuron, None, "not serving")
    try:
        status, body = await client.post(
            neuron.axon_url, CAPACITY_PATH, request_body, receiver=neuron.hotkey, timeout=timeout
        )
    except (OSError, TimeoutError) as exc:
        return CapacityAnswer(neuron, None, f"unreachable: {exc.__class__.__name__}")
    if status != 200:
        return CapacityAnswer(neuron, None, f"HTTP {status}")
    if len(body) > MAX_CAPACITY_BODY:
        return CapacityAnswer(neuron, None, "capacity answer too large")
    try:
        return CapacityAnswer(neuron, msgspec.json.decode(body, type=CapacityResponse))
    except msgspec.ValidationError as exc:
        return CapacityAnswer(neuron, None, f"malformed capacity answer: {exc}")


async def fetch_capacities(
    client: SignedPoster,
    metagraph: Metagraph,
    catalog: Catalog,
    *,
    self_hotkey: str,
    period_s: float,
    timeout: float,
    concurrency: int = 50,
) -> list[CapacityAnswer]:
    request = CapacityRequest(
        tasks=[task.public() for task in catalog.enabled()], period_seconds=period_s
    )
    body = msgspec.json.encode(request)
    limiter = asyncio.Semaphore(concurrency)

    async def one(neuron: Neuron) -> CapacityAnswer:
        async with limiter:
            return await fetch_capacity(client, neuron, body, timeout=timeout)

    targets = [n for n in metagraph.neurons if n.axon is not None and n.hotkey != self_hotkey]
    answers = await asyncio.gather(*(one(neuron) for neuron in targets))
    for answer in answers:
        if answer.error is not None:
            log.info("capacity of uid %s: %s", answer.neuron.uid, answer.error)
    return list(answers)


def routes_from_answers(
    answers: list[CapacityAnswer], catalog: Catalog, *, period_start: float
) -> dict[str, list[MinerRoute]]:
    """One route per (miner, enabled task) with positive clamped capacity and concurrency."""
    routes: dict[str, list[MinerRoute]] = {task.id: [] for task in catalog.enabled()}
    for answer in answers:
        if answer.response is None or answer.neuron.axon_url is None:
            continue
        for task_id, offer in answer.response.capacities.items():
            task = catalog.get(task_id)
            if task is None:
                continue
            volume = min(max(offer.volume, 0.0), task.max_capacity)
            if volume <= 0 or offer.concurrency <= 0:
                continue
            routes[task_id].append(
                MinerRoute(
                    task=task_id,
                    hotkey=answer.neuron.hotkey,
                    uid=answer.neuron.uid,
                    url=answer.neuron.axon_url,
                    concurrency=offer.concurrency,
                    volume=volume,
                    period_start=period_start,
                )
            )
    return routes
