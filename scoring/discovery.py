"""Discovery: ask every serving neuron of the metagraph for its capacity (signed
``POST /v1/capacity``, bounded concurrency and size, strict parsing). ``scoring.contenders``
turns the answers into the period's contenders and routes."""

from __future__ import annotations

import asyncio
import logging

import msgspec

from core.chain import Metagraph
from core.miners.client import MinerClient, TransportError
from protocol.catalog import Catalog
from protocol.chainfile import Neuron
from protocol.miner import CapacityRequest, CapacityResponse

log = logging.getLogger(__name__)

CAPACITY_PATH = "/v1/capacity"
MAX_CAPACITY_BODY = 256 * 1024


class CapacityAnswer(msgspec.Struct, frozen=True):
    neuron: Neuron
    response: CapacityResponse | None
    error: str | None = None


async def fetch_capacity(
    client: MinerClient, neuron: Neuron, request_body: bytes, *, timeout: float
) -> CapacityAnswer:
    if neuron.axon_url is None:
        return CapacityAnswer(neuron, None, "not serving")
    try:
        reply = await client.post(
            neuron.axon_url,
            CAPACITY_PATH,
            request_body,
            receiver=neuron.hotkey,
            timeout=timeout,
            max_bytes=MAX_CAPACITY_BODY,
        )
    except TransportError as exc:
        return CapacityAnswer(neuron, None, f"unreachable: {exc}")
    if reply.status != 200:
        return CapacityAnswer(neuron, None, f"HTTP {reply.status}")
    try:
        return CapacityAnswer(neuron, msgspec.json.decode(reply.body, type=CapacityResponse))
    except msgspec.DecodeError as exc:  # malformed JSON or a field out of bounds
        return CapacityAnswer(neuron, None, f"malformed capacity answer: {exc}")


async def fetch_capacities(
    client: MinerClient,
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
