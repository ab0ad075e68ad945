"""Announcing where this miner listens (``sn19 miner serve-axon``).

- Real networks: the SDK's ``ServeAxon`` intent (``ServeAxonTls`` with a certificate), signed by
  the miner's hotkey, which must be registered on the subnet. The chain rate-limits serving, so
  announce once and again only when the address changes.
- ``local``: the local network file of `sn19 dev` is edited instead: this hotkey's line gets the
  new ``ip:port`` (and TLS fingerprint); a hotkey without a line is appended, which is how an
  outside miner joins a dev network.

TLS: the chain stores a compact "neuron certificate", one algorithm byte and at most 64 bytes of
key, not an X.509 certificate. sn19 publishes the SHA-256 fingerprint of the server's X.509
certificate (DER) there, with algorithm byte ``0x00`` (``FINGERPRINT_ALGORITHM``), so a validator
can pin the certificate it sees on the TLS connection.
"""

from __future__ import annotations

import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from miner_server.settings import ChainSettings
from protocol.chainfile import Neuron, format_chain_file, parse_chain_file
from protocol.config import ConfigError

FINGERPRINT_ALGORITHM = 0x00


@dataclass(frozen=True, slots=True)
class Announcement:
    ip: str
    port: int
    # SHA-256 of the TLS certificate (DER), hex; None without TLS.
    tls_fingerprint: str | None = None

    @property
    def neuron_certificate(self) -> str | None:
        """The chain's certificate field: 0x + algorithm byte + fingerprint."""
        if self.tls_fingerprint is None:
            return None
        return f"0x{FINGERPRINT_ALGORITHM:02x}{self.tls_fingerprint}"


def announcement(ip: str, port: int, certificate: Path | None = None) -> Announcement:
    """Validate the address and read the certificate (PEM or DER) into its fingerprint."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError as exc:
        raise ConfigError(f"ip: {exc}") from None
    if address.is_unspecified:
        raise ConfigError("ip: announce the public address validators reach, not 0.0.0.0")
    if not 0 < port < 65536:
        raise ConfigError("port: must be between 1 and 65535")
    fingerprint = None
    if certificate is not None:
        try:
            raw = certificate.read_bytes()
        except OSError as exc:
            raise ConfigError(f"certificate: cannot read {certificate}: {exc.strerror}") from None
        try:
            der = ssl.PEM_cert_to_DER_cert(raw.decode("ascii")) if b"-----BEGIN" in raw else raw
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"certificate: {certificate} is not a PEM certificate") from exc
        fingerprint = hashlib.sha256(der).hexdigest()
    return Announcement(str(address), port, fingerprint)


def announce_local(path: Path, hotkey: str, what: Announcement) -> Neuron:
    """Point this hotkey's line of the local network file at ``what`` (append one if none)."""
    try:
        neurons = parse_chain_file(path.read_text("utf-8")) if path.exists() else []
    except OSError as exc:
        raise ConfigError(f"chain.local_file: cannot read {path}: {exc.strerror}") from None
    host = f"[{what.ip}]" if ":" in what.ip else what.ip
    axon = f"{host}:{what.port}"
    updated: list[Neuron] = []
    found: Neuron | None = None
    for neuron in neurons:
        if neuron.hotkey != hotkey:
            updated.append(neuron)
            continue
        found = Neuron(
            uid=neuron.uid,
            hotkey=hotkey,
            coldkey=neuron.coldkey,
            stake=neuron.stake,
            axon=axon,
            validator_permit=neuron.validator_permit,
            tls_fingerprint=what.tls_fingerprint,
        )
        updated.append(found)
    if found is None:
        found = Neuron(
            uid=len(updated), hotkey=hotkey, axon=axon, tls_fingerprint=what.tls_fingerprint
        )
        updated.append(found)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_chain_file(updated), "utf-8")
    return found


def serve_axon_intent(netuid: int, what: Announcement) -> Any:
    """The SDK intent that publishes ``what`` on ``netuid``."""
    import bittensor as bt

    if what.neuron_certificate is not None:
        return bt.ServeAxonTls(
            netuid=netuid, ip=what.ip, port=what.port, certificate=what.neuron_certificate
        )
    return bt.ServeAxon(netuid=netuid, ip=what.ip, port=what.port)


async def announce_chain(settings: ChainSettings, wallet: Any, what: Announcement) -> str:
    """Submit the announcement on a real network; returns the chain's confirmation."""
    import bittensor as bt

    intent = serve_axon_intent(settings.netuid, what)
    try:
        async with bt.Client(settings.network) as client:
            result = await client.execute(intent, wallet, wait_for_finalization=False)
    except bt.BittensorError as exc:
        raise ConfigError(f"serving the axon on {settings.network} failed: {exc}") from exc
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach {settings.network}: {exc}") from exc
    if not result.success:
        raise ConfigError(f"the chain refused the axon: {result.message}")
    return str(result.extrinsic_id or result.block_hash or "included")
