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

``Receipt`` is what dispatch collects for one delivered response: who signed the request (the
validator's hotkey) with which btauth/1 nonce, the miner's hotkey, the digest of the bytes
received (for JSON, the body itself, hashed lazily) and the signature the miner attached, if any.
``check()`` verifies it once (``valid``, ``invalid`` or ``absent``) and ``record()`` is the text
stored with the check job: everything needed to verify it again later, with the verdict.
Verification uses the SDK's sr25519 ``verify`` (~60 µs), so the gateway runs it off the request
path (``gateway.receipts``).
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec
from bittensor.sp_core import verify as sr25519_verify

from protocol.miner import RECEIPT_COMMENT_PREFIX, receipt_payload

_MARKER = b": " + RECEIPT_COMMENT_PREFIX.encode()
# Longest receipt comment: marker + 0x + 128 hex chars + CRLF CRLF, with room to spare.
_TAIL = 512
_SIGNATURE_HEX = 128
_FLUSH_ABOVE = 8 * 1024


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

    Feed every raw byte received, in order. Bytes are appended to a small buffer and hashed in
    blocks of a few KiB, all but the last ``_TAIL`` bytes (where the receipt comment may be), so
    memory stays bounded whatever the stream's length and a small SSE read costs one append.
    """

    __slots__ = ("_buffer", "_hash")

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> None:
        buffer = self._buffer
        buffer += chunk
        if len(buffer) > _FLUSH_ABOVE:
            cut = len(buffer) - _TAIL
            with memoryview(buffer) as view:
                self._hash.update(view[:cut])
            del buffer[:cut]

    def finish(self) -> tuple[str, str | None]:
        """``(sha256 hex of the bytes before the receipt comment, signature hex or None)``.

        The receipt must be the last event: the comment line, then a blank line, then nothing.
        Without one, the digest covers the whole stream and the signature is None.
        """
        tail = bytes(self._buffer)
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


ReceiptStatus = Literal["valid", "invalid", "absent", "unchecked"]


class ReceiptRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A receipt as stored with a check job (JSON text), re-verifiable by anyone."""

    v: str = "sn19-receipt/1"
    status: str
    miner: str
    validator: str
    nonce: str
    sha256: str
    signature: str | None = None


_RECORD = msgspec.json.Encoder()
_RECORD_DECODER = msgspec.json.Decoder(ReceiptRecord)


class Receipt:
    """One delivered response's receipt; ``body`` is hashed on first use (JSON responses)."""

    __slots__ = ("_digest", "body", "miner", "nonce", "signature", "status", "validator")

    def __init__(
        self,
        *,
        miner: str,
        validator: str,
        nonce: str,
        signature: str | None,
        digest: str | None = None,
        body: bytes | None = None,
    ) -> None:
        self.miner = miner
        self.validator = validator
        self.nonce = nonce
        self.signature = signature
        self.body = body
        self._digest = digest
        self.status: ReceiptStatus = "unchecked"

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = hashlib.sha256(self.body or b"").hexdigest()
            self.body = None
        return self._digest

    def check(self) -> ReceiptStatus:
        """Verify once (later calls return the verdict)."""
        if self.status == "unchecked":
            if not self.signature:
                self.status = "absent"
            elif self.nonce and verify_digest(
                self.signature,
                nonce=self.nonce,
                validator=self.validator,
                miner=self.miner,
                body_sha256=self.digest,
            ):
                self.status = "valid"
            else:
                self.status = "invalid"
        return self.status

    def record(self) -> str:
        """The stored form (verifies first if that was not done yet)."""
        status = self.check()
        signature = self.signature[:256] if self.signature else None
        return _RECORD.encode(
            ReceiptRecord(
                status=status,
                miner=self.miner,
                validator=self.validator,
                nonce=self.nonce,
                sha256=self.digest,
                signature=signature,
            )
        ).decode()


def verify_record(text: str) -> bool:
    """Re-verify a stored receipt record (an operator or a disputing miner can do the same)."""
    try:
        record = _RECORD_DECODER.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False
    return verify_digest(
        record.signature,
        nonce=record.nonce,
        validator=record.validator,
        miner=record.miner,
        body_sha256=record.sha256,
    )
