"""Real sr25519 hotkeys in throw-away wallet directories (bittensor's on-disk format)."""

from __future__ import annotations

from pathlib import Path

import bittensor as bt


def make_wallet(root: Path, name: str, hotkey: str = "default") -> bt.Wallet:
    """Load the wallet `name`/`hotkey` under `root`, creating it (unencrypted) if missing."""
    wallet = bt.Wallet(name=name, hotkey=hotkey, path=str(root))
    if not wallet.coldkeypub_file.exists_on_device():
        wallet.create_new_coldkey(use_password=False, overwrite=True, suppress=True)
    if not wallet.hotkey_file.exists_on_device():
        wallet.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
    return wallet
