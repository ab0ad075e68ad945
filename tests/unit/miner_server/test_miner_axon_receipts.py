"""Announcing the axon (local network file, the SDK intents, `sn19 miner serve-axon`) and
signing receipts (the payload, JSON and stream trailers, verified by the validator side)."""

from __future__ import annotations

import base64
import hashlib
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.miners.receipts import StreamReceipt, verify_digest, verify_json, verify_stream
from miner_server.auth import Caller
from miner_server.axon import announce_local, announcement, serve_axon_intent
from miner_server.receipts import ReceiptSigner
from protocol.chainfile import Neuron, format_chain_file, parse_chain_file
from protocol.config import ConfigError
from protocol.miner import receipt_payload
from tests.support.wallets import make_wallet

DER = b"0\x82\x01\x0atest-certificate-bytes" * 3


def pem(tmp_path: Path) -> Path:
    body = "\n".join(textwrap.wrap(base64.b64encode(DER).decode(), 64))
    path = tmp_path / "cert.pem"
    path.write_text(f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
    return path


def test_announcement_validates_and_fingerprints(tmp_path: Path) -> None:
    plain = announcement("203.0.113.5", 8091)
    assert (plain.ip, plain.port, plain.neuron_certificate) == ("203.0.113.5", 8091, None)
    tls = announcement("203.0.113.5", 443, pem(tmp_path))
    assert tls.tls_fingerprint == hashlib.sha256(DER).hexdigest()
    assert tls.neuron_certificate == "0x00" + hashlib.sha256(DER).hexdigest()
    with pytest.raises(ConfigError, match="0.0.0.0"):
        announcement("0.0.0.0", 8091)
    with pytest.raises(ConfigError, match="ip"):
        announcement("not-an-ip", 8091)
    with pytest.raises(ConfigError, match="port"):
        announcement("203.0.113.5", 0)


def test_serve_axon_intents() -> None:
    plain = serve_axon_intent(19, announcement("203.0.113.5", 8091))
    assert (type(plain).__name__, plain.netuid, plain.ip, plain.port) == (
        "ServeAxon",
        19,
        "203.0.113.5",
        8091,
    )
    what = announcement("203.0.113.5", 443)
    tls = serve_axon_intent(176, type(what)(what.ip, what.port, "ab" * 32))
    assert type(tls).__name__ == "ServeAxonTls"
    assert tls.certificate == "0x00" + "ab" * 32 and tls.netuid == 176


def test_announce_local_updates_or_appends(tmp_path: Path) -> None:
    path = tmp_path / "chain.txt"
    path.write_text(format_chain_file([Neuron(0, "5Val", stake=10, validator_permit=True)]))
    first = announce_local(path, "5Miner", announcement("127.0.0.1", 9001))
    assert (first.uid, first.axon) == (1, "127.0.0.1:9001")
    moved = announce_local(path, "5Miner", announcement("127.0.0.2", 9002, pem(tmp_path)))
    neurons = parse_chain_file(path.read_text())
    assert [n.hotkey for n in neurons] == ["5Val", "5Miner"]
    assert neurons[1].axon == "127.0.0.2:9002" == moved.axon
    assert neurons[1].tls_fingerprint == hashlib.sha256(DER).hexdigest()
    assert neurons[0].validator_permit and neurons[0].stake == 10


def test_sn19_miner_serve_axon_on_the_local_network(tmp_path: Path) -> None:
    from sn19.commands.miner import command

    wallet = make_wallet(tmp_path / "wallets", "m", "hk")
    chain = tmp_path / "chain.txt"
    config = tmp_path / "miner.toml"
    config.write_text(
        f'port = 9100\n[wallet]\nname = "m"\nhotkey = "hk"\npath = "{tmp_path / "wallets"}"\n'
    )
    result = CliRunner().invoke(
        command,
        ["--config", str(config), "serve-axon", "--ip", "127.0.0.1", "--local-file", str(chain)],
    )
    assert result.exit_code == 0, result.output
    assert "uid 0" in result.output
    (neuron,) = parse_chain_file(chain.read_text())
    assert (neuron.hotkey, neuron.axon) == (wallet.hotkey.ss58_address, "127.0.0.1:9100")
    refused = CliRunner().invoke(
        command, ["--config", str(config), "serve-axon", "--ip", "1.2.3.4"]
    )
    assert refused.exit_code != 0 and "local_file" in refused.output


def test_receipt_payload_format_and_bounds() -> None:
    payload = receipt_payload(nonce=17, validator="5V", miner="5M", body_sha256="AB" * 32)
    assert payload == b"sn19-receipt/1\n17\n5V\n5M\n" + b"ab" * 32
    with pytest.raises(ValueError):
        receipt_payload(nonce=1, validator="5V", miner="5M", body_sha256="zz")
    with pytest.raises(ValueError):
        receipt_payload(nonce=1, validator="5V\n", miner="5M", body_sha256="ab" * 32)


def test_signed_receipts_verify_and_bind_everything(wallet_root: Path) -> None:
    miner = make_wallet(wallet_root, "miner").hotkey
    signer = ReceiptSigner(miner)
    caller = Caller("5Validator", 123456789)
    body = b'{"object":"chat.completion"}'
    receipt = signer.sign_body(caller, body)
    assert len(receipt) == 128 and receipt == receipt.lower()
    who = {"validator": "5Validator", "miner": miner.ss58_address}
    assert verify_json(receipt, body, nonce=123456789, **who)
    assert verify_json("0x" + receipt, body, nonce="123456789", **who)
    assert not verify_json(receipt, body + b" ", nonce=123456789, **who)
    assert not verify_json(receipt, body, nonce=123456788, **who)
    assert not verify_json(receipt, body, nonce=123456789, validator="5Other", miner=who["miner"])
    assert not verify_json(None, body, nonce=1, **who)
    assert not verify_json("zz" * 64, body, nonce=1, **who)
    assert not verify_digest(receipt, nonce=1, validator="5V", miner="bad", body_sha256="a" * 64)


def test_stream_trailer_and_incremental_verification(wallet_root: Path) -> None:
    miner = make_wallet(wallet_root, "miner").hotkey
    caller = Caller("5Validator", 42)
    trailer = ReceiptSigner(miner).stream_trailer(caller)
    chunks = [b'data: {"a":1}\n\n' * 50, b'data: {"b":2}\n\n', b"data: [DONE]\n\n"]
    for chunk in chunks:
        trailer.update(chunk)
    stream = b"".join(chunks) + trailer.comment()
    who = {"nonce": 42, "validator": "5Validator", "miner": miner.ss58_address}
    assert verify_stream(stream, **who)
    incremental = StreamReceipt()
    for index in range(0, len(stream), 7):  # any chunking gives the same answer
        incremental.feed(stream[index : index + 7])
    digest, signature = incremental.finish()
    assert digest == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert verify_digest(signature, body_sha256=digest, **who)
    assert not verify_stream(stream + b"data: extra\n\n", **who)  # the receipt must come last
