"""Gateway unit tests: the real app over in-memory miners."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_miner import Canned
from tests.support.miner_streams import chat_chunks, stream_body


def ok_chat(count: int = 4, **kwargs: Any) -> Callable[[str, str, bytes], Canned]:
    pieces = stream_body(chat_chunks(count, **kwargs))
    return lambda url, path, body: Canned(200, pieces)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path
