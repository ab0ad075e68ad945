"""Miners whose receipts do not hold: a keypair wrapper for ``miner_server`` that signs receipts
wrongly while the miner still answers normally."""

from __future__ import annotations

from typing import Any


class CorruptSigner:
    """The miner's real hotkey, but every signature it makes has one bit flipped (what a miner
    that tampers with its receipts, or signs something other than what it sent, looks like)."""

    def __init__(self, keypair: Any) -> None:
        self._keypair = keypair
        self.ss58_address: str = keypair.ss58_address
        self.crypto_type: int = keypair.crypto_type

    def sign(self, data: bytes) -> bytes:
        signature = bytearray(bytes(self._keypair.sign(data)))
        signature[0] ^= 0x01
        return bytes(signature)
