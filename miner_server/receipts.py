"""Signing receipts: this miner's sr25519 signature over what it returned (SPEC §2).

The payload is ``protocol.miner.receipt_payload``: the request's btauth/1 nonce, the caller's
hotkey, this miner's hotkey and the sha256 of the response bytes. JSON responses carry the
signature (lowercase hex) in ``X-Sn19-Receipt``; streams end with the SSE comment
``: receipt <hex>`` over every byte sent before it (``responses.EventStream``). A validator
verifies it and keeps it with the check job, so an answer is provably this miner's.
"""

from __future__ import annotations

import hashlib
from typing import Any

from miner_server.auth import Caller
from protocol.miner import RECEIPT_COMMENT_PREFIX, receipt_payload


class ReceiptSigner:
    """Signs receipts with the miner's hotkey keypair (anything with ``sign(bytes)``)."""

    __slots__ = ("_keypair", "hotkey")

    def __init__(self, keypair: Any) -> None:
        self._keypair = keypair
        self.hotkey: str = keypair.ss58_address

    def sign_digest(self, caller: Caller, body_sha256: str) -> str:
        payload = receipt_payload(
            nonce=caller.nonce_ns,
            validator=caller.hotkey,
            miner=self.hotkey,
            body_sha256=body_sha256,
        )
        return bytes(self._keypair.sign(payload)).hex()

    def sign_body(self, caller: Caller, body: bytes) -> str:
        return self.sign_digest(caller, hashlib.sha256(body).hexdigest())

    def stream_trailer(self, caller: Caller) -> StreamTrailer:
        return StreamTrailer(self, caller)


class StreamTrailer:
    """Hashes a stream's bytes as they are sent; ``comment()`` is the final receipt event."""

    __slots__ = ("_caller", "_hash", "_signer")

    def __init__(self, signer: ReceiptSigner, caller: Caller) -> None:
        self._signer = signer
        self._caller = caller
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def comment(self) -> bytes:
        signature = self._signer.sign_digest(self._caller, self._hash.hexdigest())
        return f": {RECEIPT_COMMENT_PREFIX}{signature}\n\n".encode()
