"""Fixtures of the checker's unit tests."""

from __future__ import annotations

import pytest

from tests.support.checker_fakes import FakeReference


@pytest.fixture
def reference() -> FakeReference:
    return FakeReference()
