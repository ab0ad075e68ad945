"""``Receipt``: what dispatch keeps of a miner's receipt, verified once, stored as a record that
anyone can verify again; a tampered body, another request's nonce or a corrupted signature is
caught."""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec

from core.miners import Receipt, verify_record
from protocol.miner import receipt_payload
from tests.support.wallets import make_wallet

BODY = b'{"object":"list","data":[]}'


def signed(tmp_path: Path, body: bytes = BODY, nonce: str = "1700000000000000001") -> Receipt:
    miner = make_wallet(tmp_path, "miner").hotkey
    validator = make_wallet(tmp_path, "validator").hotkey.ss58_address
    payload = receipt_payload(
        nonce=nonce,
        validator=validator,
        miner=miner.ss58_address,
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
    return Receipt(
        miner=miner.ss58_address,
        validator=validator,
        nonce=nonce,
        signature=bytes(miner.sign(payload)).hex(),
        body=body,
    )


def test_a_valid_receipt_and_its_record(tmp_path: Path) -> None:
    receipt = signed(tmp_path)
    assert receipt.check() == "valid"
    record = receipt.record()
    fields = msgspec.json.decode(record)
    assert fields["status"] == "valid" and fields["sha256"] == hashlib.sha256(BODY).hexdigest()
    assert verify_record(record)


def test_tampering_is_caught(tmp_path: Path) -> None:
    good = signed(tmp_path)
    other_body = Receipt(
        miner=good.miner,
        validator=good.validator,
        nonce=good.nonce,
        signature=good.signature,
        body=BODY + b" ",
    )
    other_request = Receipt(
        miner=good.miner,
        validator=good.validator,
        nonce="1700000000000000002",
        signature=good.signature,
        body=BODY,
    )
    assert good.signature is not None
    flipped = ("1" if good.signature[0] == "0" else "0") + good.signature[1:]
    corrupted = Receipt(
        miner=good.miner, validator=good.validator, nonce=good.nonce, signature=flipped, body=BODY
    )
    for receipt in (other_body, other_request, corrupted):
        assert receipt.check() == "invalid"
        assert not verify_record(receipt.record())
    missing = Receipt(miner=good.miner, validator=good.validator, nonce="1", signature=None)
    assert missing.check() == "absent"
    assert msgspec.json.decode(missing.record())["status"] == "absent"
    assert not verify_record("not json")
