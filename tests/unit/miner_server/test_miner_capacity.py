"""The static capacity policy: offers per served task, clamped, only for matching tasks."""

from __future__ import annotations

import msgspec

from miner_server.auth import Caller
from miner_server.capacity import StaticCapacity, TaskOffer
from protocol.miner import CapacityRequest

CALLER = Caller(hotkey="5validator", nonce_ns=1)


def test_offers_served_tasks_clamped_to_the_validators_max(dev_catalog) -> None:
    chat = dev_catalog.get("sn19-tiny-chat")
    image = dev_catalog.get("sn19-tiny-diffusion")
    policy = StaticCapacity(
        {chat.id: TaskOffer(chat, 50_000, 8), image.id: TaskOffer(image, 800, 1)}, version="1.0"
    )
    public = [task.public() for task in dev_catalog.enabled()]
    smaller = msgspec.structs.replace(public[1], max_capacity=100)  # the validator's own limit
    other_model = msgspec.structs.replace(public[0], model="someone/else")
    request = CapacityRequest(tasks=[public[0], smaller, public[2]])
    answer = policy.offer(CALLER, request)
    assert answer.miner_version == "1.0"
    assert {key: (value.volume, value.concurrency) for key, value in answer.capacities.items()} == {
        chat.id: (50_000, 8),
        image.id: (100, 1),
    }
    assert policy.offer(CALLER, CapacityRequest(tasks=[other_model])).capacities == {}
