"""The validator's hotkey, loaded once per process from the bittensor wallet on disk."""

from __future__ import annotations

import bittensor as bt

from core.miners.signing import RequestSigner
from core.settings import Settings


def load_signer(settings: Settings) -> RequestSigner:
    """Read the hotkey once (signing with the wallet object would re-read the file per call)."""
    wallet = bt.Wallet(
        name=settings.wallet.name, hotkey=settings.wallet.hotkey, path=settings.wallet_path
    )
    try:
        return RequestSigner.from_wallet(wallet)
    except FileNotFoundError as exc:
        raise RuntimeError(
            f"no hotkey {settings.wallet.name}/{settings.wallet.hotkey} under "
            f"{settings.wallet_path}: create it with btcli (or run sn19 dev)"
        ) from exc
