"""Session-wide fixtures. Package-specific fixtures live in the conftest of each test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.catalog import Catalog, resolve_catalog


@pytest.fixture(scope="session")
def dev_catalog() -> Catalog:
    return resolve_catalog("dev")


@pytest.fixture(scope="session")
def wallet_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wallets")
