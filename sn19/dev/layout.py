"""The data directory of `sn19 dev`: wallets, the local network file, process configs.

Everything is kept between runs (wallets and keys stay the same), except our own neurons' axon
lines, which are rewritten with the current ports. Lines an outside miner added to the network
file are preserved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bittensor as bt

from protocol.chainfile import Neuron, format_chain_file, parse_chain_file

VALIDATOR_STAKE = 10_000.0
MINER_STAKE = 0.0


@dataclass(frozen=True)
class MinerLayout:
    index: int
    wallet_name: str
    hotkey: str
    port: int

    @property
    def name(self) -> str:
        return f"miner-{self.index}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def ensure_wallet(root: Path, name: str, hotkey: str = "default") -> str:
    """Load or create an unencrypted dev wallet; return its hotkey ss58 address."""
    wallet = bt.Wallet(name=name, hotkey=hotkey, path=str(root))
    if not wallet.coldkeypub_file.exists_on_device():
        wallet.create_new_coldkey(use_password=False, overwrite=True, suppress=True)
    if not wallet.hotkey_file.exists_on_device():
        wallet.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
    address: str = wallet.hotkey.ss58_address
    return address


def write_chain_file(
    path: Path, *, validator_hotkey: str, miners: list[MinerLayout], ours: set[str]
) -> list[Neuron]:
    """Rewrite our neurons (validator first, then miners) and keep every foreign line."""
    foreign: list[Neuron] = []
    if path.exists():
        foreign = [n for n in parse_chain_file(path.read_text("utf-8")) if n.hotkey not in ours]
    neurons = [
        Neuron(uid=0, hotkey=validator_hotkey, stake=VALIDATOR_STAKE, validator_permit=True),
        *(
            Neuron(uid=0, hotkey=m.hotkey, stake=MINER_STAKE, axon=f"127.0.0.1:{m.port}")
            for m in miners
        ),
        *foreign,
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_chain_file(neurons), "utf-8")
    return parse_chain_file(path.read_text("utf-8"))


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def render_toml(sections: dict[str, dict[str, object]]) -> str:
    """A small TOML writer for flat sections (the top level is the "" section)."""
    lines: list[str] = []
    for section, values in sections.items():
        if section:
            lines.append(f"\n[{section}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
    return "\n".join(lines).lstrip("\n") + "\n"
