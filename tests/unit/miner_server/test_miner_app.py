"""create_app: what it serves, with which limits and offers, and its refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.instant import InstantTextEngine
from miner_server import create_app
from miner_server.app import build_state, served_tasks
from miner_server.auth import Caller
from protocol.config import ConfigError
from protocol.miner import CapacityRequest
from tests.support.fake_engines import FakeEmbeddingEngine, FakeImageEngine
from tests.support.miner import miner_settings

CHAT, IMAGE, EMBED = "sn19-tiny-chat", "sn19-tiny-diffusion", "all-minilm-l6-v2"


def engines() -> dict:
    return {CHAT: InstantTextEngine(), IMAGE: FakeImageEngine(), EMBED: FakeEmbeddingEngine()}


def test_serves_every_enabled_task_with_kind_defaults(wallet_root: Path, dev_catalog) -> None:
    settings = miner_settings(wallet_root, task={CHAT: {"capacity": 10**9}, EMBED: {"capacity": 5}})
    state = build_state(settings, served_tasks(dev_catalog, settings), "5hotkey", engines())
    assert state.task_ids == [CHAT, IMAGE, EMBED]
    assert [state.chat[CHAT].limiter.limit, state.image[IMAGE].limiter.limit] == [8, 1]
    assert state.embedding[EMBED].limiter.limit == 8
    assert state.owned_engines == []  # injected engines belong to the caller
    request = CapacityRequest(tasks=[task.public() for task in dev_catalog.enabled()])
    offer = state.capacity.offer(Caller("5v", 1), request).capacities
    assert offer[CHAT].volume == dev_catalog.get(CHAT).max_capacity  # clamped to max_capacity
    assert offer[EMBED].volume == 5
    assert offer[IMAGE].volume == dev_catalog.get(IMAGE).max_capacity


def test_refusals(wallet_root: Path) -> None:
    with pytest.raises(ConfigError, match="no-such-task"):
        create_app(miner_settings(wallet_root, tasks=["no-such-task"]), engines=engines())
    with pytest.raises(ConfigError, match="cannot load hotkey"):
        create_app(
            miner_settings(
                wallet_root, tasks=[CHAT], wallet={"name": "ghost", "path": str(wallet_root)}
            ),
            engines=engines(),
        )
    with pytest.raises(ConfigError, match="cannot serve"):
        create_app(miner_settings(wallet_root, tasks=[IMAGE]), engines={IMAGE: InstantTextEngine()})


def test_engine_override_from_settings(wallet_root: Path) -> None:
    settings = miner_settings(
        wallet_root, tasks=[CHAT], task={CHAT: {"engine": {"type": "instant", "model": "x"}}}
    )
    app = create_app(settings)
    state = app.dependencies["miner"].dependency()
    assert isinstance(state.chat[CHAT].engine, InstantTextEngine)
    assert state.owned_engines == [state.chat[CHAT].engine]
