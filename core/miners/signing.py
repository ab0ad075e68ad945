"""Signing validator → miner calls with btauth/1 (the Bittensor SDK's hotkey-signed HTTP).

The signer is resolved ONCE: signing with a ``Wallet`` object makes the SDK re-read the key file
on every call (~2 ms); with the wallet's resolved hotkey keypair it costs ~85 µs. Every attempt
signs a fresh nonce, so a retry to another miner is never a replay.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from bittensor import http_auth
from bittensor.signing import resolve_signer
from bittensor.wallets import CRYPTO_TYPE_NAMES

# The header carrying the request's nonce: what the miner's receipt is bound to.
NONCE_HEADER: str = http_auth.HEADER_NONCE


class Signer(Protocol):
    """The part of ``bittensor.Signer`` we rely on (a ``Keypair`` satisfies it)."""

    @property
    def ss58_address(self) -> str: ...

    @property
    def crypto_type(self) -> int: ...

    def sign(self, data: bytes) -> Any: ...


class RequestSigner:
    """btauth/1 headers for one request, from a resolved hotkey signer."""

    __slots__ = ("_scheme", "_signer", "hotkey")

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        self.hotkey = signer.ss58_address
        scheme = CRYPTO_TYPE_NAMES.get(signer.crypto_type)
        if scheme is None:
            raise ValueError(f"cannot sign btauth requests with crypto type {signer.crypto_type}")
        self._scheme: str = scheme

    @classmethod
    def from_wallet(cls, wallet: Any) -> RequestSigner:
        """From a ``bittensor.Wallet`` (its hotkey keypair is loaded here, once) or any object
        ``bittensor.signing.resolve_signer`` accepts."""
        hotkey = getattr(wallet, "hotkey", None)
        source = hotkey if hotkey is not None else wallet
        signer: Signer = resolve_signer(source, role="hotkey")
        return cls(signer)

    def headers(self, *, method: str, path: str, body: bytes, receiver: str) -> dict[str, str]:
        """What ``bittensor.http_auth.sign`` returns for this signer, without re-resolving the
        signer on every call (its ``Protocol`` isinstance checks cost ~40 µs): the payload is
        the SDK's own ``build_payload``, the headers its constants."""
        nonce = time.time_ns()
        payload = http_auth.build_payload(
            scheme=self._scheme,
            method=method,
            path=path,
            body=body,
            nonce_ns=nonce,
            sender_ss58=self.hotkey,
            receiver_ss58=receiver,
        )
        headers = {
            http_auth.HEADER_VERSION: http_auth.VERSION,
            http_auth.HEADER_HOTKEY: self.hotkey,
            http_auth.HEADER_NONCE: str(nonce),
            http_auth.HEADER_SIGNATURE: "0x" + bytes(self._signer.sign(payload)).hex(),
            http_auth.HEADER_RECEIVER: receiver,
        }
        if self._scheme != "sr25519":
            headers[http_auth.HEADER_CRYPTO] = self._scheme
        return headers
