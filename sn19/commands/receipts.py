"""`sn19 receipts verify [FILE]`: check a miner's receipt offline.

The input (a file, or standard input with ``-``) is what ``GET /v1/requests/{id}`` answers, or
just its ``receipt`` object (a ``sn19-receipt/1`` record): the request's btauth/1 nonce, the
validator's and the miner's hotkeys, the sha256 of the bytes the miner returned, and the
miner's sr25519 signature over them. The signature is checked against the miner's hotkey
(an SS58 address is its public key), with no network and no database: exit 0 when the miner
signed exactly that, 1 when it did not (or there is no signature), 2 when the input is not a
receipt.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click


def _receipt_of(document: Any) -> dict[str, Any]:
    if isinstance(document, dict) and isinstance(document.get("receipt"), dict):
        document = document["receipt"]
    fields = ("miner", "validator", "nonce", "sha256")
    if (
        not isinstance(document, dict)
        or not str(document.get("v", "sn19-receipt/1")).startswith("sn19-receipt/")
        or not all(isinstance(document.get(name), str) for name in fields)
    ):
        raise click.UsageError(
            "not a receipt: give the JSON of GET /v1/requests/{id} or its 'receipt' object"
        )
    return document


@click.group()
def command() -> None:
    """Verify miners' receipts."""


@command.command("verify")
@click.argument("source", type=click.File("r"), default="-")
def verify(source: Any) -> None:
    """Check the receipt in SOURCE (a JSON file, or '-' for standard input)."""
    from core.miners.receipts import verify_record

    try:
        document = json.load(source)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"not JSON: {exc}") from None
    receipt = _receipt_of(document)
    record = json.dumps(receipt)
    shown = (
        f"  miner      {receipt.get('miner')}\n"
        f"  validator  {receipt.get('validator')}\n"
        f"  nonce      {receipt.get('nonce')}\n"
        f"  sha256     {receipt.get('sha256')}"
    )
    if verify_record(record):
        click.echo(f"valid: the miner signed this response\n{shown}")
        return
    reason = "no signature" if not receipt.get("signature") else "the signature does not match"
    click.echo(f"INVALID: {reason}\n{shown}")
    sys.exit(1)
