"""The local network file: one neuron per line, so an outside miner joins by adding a line.

Format (``#`` starts a comment; blank lines are ignored; the uid is the line's position among
neuron lines, counting from 0)::

    # hotkey                                            axon             options
    5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY    127.0.0.1:8091   stake=0
    5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty    -                stake=10000 validator

``axon`` is ``host:port`` or ``-`` (not serving). Options: ``stake=<TAO>``,
``coldkey=<ss58>``, ``validator`` (has a validator permit), ``tls=<sha256 of the certificate>``.
"""

from __future__ import annotations

import msgspec


class ChainFileError(ValueError):
    """A line of the local network file is malformed; the message gives its number."""


class Neuron(msgspec.Struct, frozen=True):
    uid: int
    hotkey: str
    coldkey: str = ""
    stake: float = 0.0
    axon: str | None = None
    validator_permit: bool = False
    tls_fingerprint: str | None = None

    @property
    def axon_url(self) -> str | None:
        return f"http://{self.axon}" if self.axon else None


def parse_chain_file(text: str) -> list[Neuron]:
    neurons: list[Neuron] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2:
            raise ChainFileError(f"line {number}: expected 'hotkey axon [options]'")
        hotkey, axon, *options = parts
        fields: dict[str, object] = {}
        for option in options:
            key, sep, value = option.partition("=")
            if key == "validator" and not sep:
                fields["validator_permit"] = True
            elif key == "stake" and sep:
                try:
                    fields["stake"] = float(value)
                except ValueError:
                    raise ChainFileError(f"line {number}: stake must be a number") from None
            elif key == "coldkey" and sep:
                fields["coldkey"] = value
            elif key == "tls" and sep:
                fields["tls_fingerprint"] = value
            else:
                raise ChainFileError(f"line {number}: unknown option {option!r}")
        if axon != "-":
            host, sep, port = axon.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ChainFileError(f"line {number}: axon must be host:port or '-'")
        neurons.append(
            Neuron(
                uid=len(neurons),
                hotkey=hotkey,
                axon=None if axon == "-" else axon,
                coldkey=str(fields.get("coldkey", "")),
                stake=float(fields.get("stake", 0.0)),  # type: ignore[arg-type]
                validator_permit=bool(fields.get("validator_permit", False)),
                tls_fingerprint=fields.get("tls_fingerprint"),  # type: ignore[arg-type]
            )
        )
    if len({neuron.hotkey for neuron in neurons}) != len(neurons):
        raise ChainFileError("a hotkey appears on more than one line")
    return neurons


def format_neuron(neuron: Neuron) -> str:
    options = [f"stake={neuron.stake:g}"]
    if neuron.coldkey:
        options.append(f"coldkey={neuron.coldkey}")
    if neuron.validator_permit:
        options.append("validator")
    if neuron.tls_fingerprint:
        options.append(f"tls={neuron.tls_fingerprint}")
    return f"{neuron.hotkey}  {neuron.axon or '-'}  {' '.join(options)}"


def format_chain_file(neurons: list[Neuron]) -> str:
    header = "# sn19 local network: hotkey axon [stake=TAO] [coldkey=SS58] [validator]\n"
    return header + "".join(format_neuron(neuron) + "\n" for neuron in neurons)
