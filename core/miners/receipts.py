"""Verifying miner receipts (SPEC §2): the miner's sr25519 signature over what it returned.

A receipt binds a response to the request it answers: the payload is
``protocol.miner.receipt_payload`` (version, the request's btauth/1 nonce, the validator's
hotkey, the miner's hotkey, sha256 of the response bytes), signed with the miner's hotkey.

- JSON responses carry it in the ``X-Sn19-Receipt`` header; the signed digest is over the body
  exactly as received (``verify_json``).
- Streams end with a final SSE comment ``: receipt <hex>``; the signed digest is over every byte
  of the stream before that comment. ``StreamReceipt`` hashes a stream incrementally while it is
  relayed (it holds back only the last few hundred bytes, where the comment may be) and
  ``finish()`` returns the digest and the signature; ``verify_stream`` does the same for a
  whole body.

The gateway verifies a receipt before it enqueues the check job and stores the hex signature with
it, so a bad answer is provably the miner's. Verification uses the SDK's sr25519 ``verify``.
"""

from __future__ import annotations

import hashlib

from bittensor.sp_core import verify as sr25519_verify

from protocol.miner import RECEIPT_COMMENT_PREFIX, receipt_payload

_MARKER = b": " + RECEIPT_COMMENT_PREFIX.encode()
# Longest receipt comment: marker + 0x + 128 hex chars + CRLF CRLF, with room to spare.
_TAIL = 512
_SIGNATURE_HEX = 128


def _signature_bytes(signature: str) -> bytes | None:
    text = signature.strip().removeprefix("0x")
    if len(text) != _SIGNATURE_HEX:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def verify_digest(
    signature: str | None, *, nonce: int | str, validator: str, miner: str, body_sha256: str
) -> bool:
    """True when ``signature`` (hex) is ``miner``'s signature of the receipt payload."""
    if not signature:
        return False
    raw = _signature_bytes(signature)
    if raw is None:
        return False
    try:
        payload = receipt_payload(
            nonce=nonce, validator=validator, miner=miner, body_sha256=body_sha256
        )
        return bool(sr25519_verify(payload, raw, miner))
    except (ValueError, TypeError):
        return False


def verify_json(
    signature: str | None, body: bytes, *, nonce: int | str, validator: str, miner: str
) -> bool:
    """Check the ``X-Sn19-Receipt`` header of a JSON response against its body bytes."""
    return verify_digest(
        signature,
        nonce=nonce,
        validator=validator,
        miner=miner,
        body_sha256=hashlib.sha256(body).hexdigest(),
    )


class StreamReceipt:
    """Hash an SSE body as it arrives; ``finish()`` splits off the final receipt comment.

    Feed every raw byte received, in order. Everything except the last ``_TAIL`` bytes is hashed
    immediately, so memory stays bounded whatever the stream's length.
    """

    __slots__ = ("_hash", "_tail")

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        tail = self._tail + chunk
        if len(tail) > _TAIL:
            cut = len(tail) - _TAIL
            self._hash.update(tail[:cut])
            tail = tail[cut:]
        self._tail = tail

    def finish(self) -> tuple[str, str | None]:
        """``(sha256 hex of the bytes before the receipt comment, signature hex or None)``.

        The receipt must be the last event: the comment line, then a blank line, then nothing.
        Without one, the digest covers the whole stream and the signature is None.
        """
        tail = self._tail
        start = tail.rfind(_MARKER)
        signature: str | None = None
        if start >= 0 and (start == 0 or tail[start - 1 : start] == b"\n"):
            line, _, rest = tail[start + len(_MARKER) :].partition(b"\n")
            if rest.strip(b"\r\n") == b"" and line.strip():
                signature = line.strip().decode("ascii", "replace")
                tail = tail[:start]
        digest = self._hash.copy()
        digest.update(tail)
        return digest.hexdigest(), signature


def verify_stream(body: bytes, *, nonce: int | str, validator: str, miner: str) -> bool:
    """Check a whole SSE body that ends with its ``: receipt <hex>`` comment."""
    receipt = StreamReceipt()
    receipt.feed(body)
    digest, signature = receipt.finish()
    return verify_digest(
        signature, nonce=nonce, validator=validator, miner=miner, body_sha256=digest
    )
