"""`sn19 miner`: run the bundled miner server.

Settings come from defaults < the TOML file (``--config`` or ``SN19_MINER_CONFIG``) < the
environment (``SN19_MINER_*``) < the flags below. Subcommands (e.g. announcing the axon on chain)
get the same options through the group.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import click

from inference.base import EngineError
from miner_server.settings import MinerSettings
from protocol.catalog import CatalogError
from protocol.config import ConfigError


def load(config_file: str | None, overrides: dict[str, Any]) -> MinerSettings:
    try:
        return MinerSettings.from_env(config_file=config_file, overrides=overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(invoke_without_command=True)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML settings file (default: $SN19_MINER_CONFIG).",
)
@click.option("--host", default=None, help="Address to listen on (default 0.0.0.0).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8091).")
@click.option("--catalog", default=None, help="dev, production, or a catalog TOML file.")
@click.option("--task", "tasks", multiple=True, help="Task id to serve (repeatable; default all).")
@click.option("--wallet-name", default=None, help="Wallet (coldkey) name (default miner).")
@click.option("--wallet-hotkey", default=None, help="Hotkey name (default default).")
@click.option(
    "--wallet-path", default=None, help="Wallets directory (default ~/.bittensor/wallets)."
)
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING… (default INFO).")
@click.pass_context
def command(
    ctx: click.Context,
    config_file: str | None,
    host: str | None,
    port: int | None,
    catalog: str | None,
    tasks: tuple[str, ...],
    wallet_name: str | None,
    wallet_hotkey: str | None,
    wallet_path: str | None,
    log_level: str | None,
) -> None:
    """Run the bundled miner server (without a subcommand)."""
    wallet = {
        key: value
        for key, value in (("name", wallet_name), ("hotkey", wallet_hotkey), ("path", wallet_path))
        if value is not None
    }
    overrides: dict[str, Any] = {
        key: value
        for key, value in (
            ("host", host),
            ("port", port),
            ("catalog", catalog),
            ("log_level", log_level),
        )
        if value is not None
    }
    if tasks:
        overrides["tasks"] = list(tasks)
    if wallet:
        overrides["wallet"] = wallet
    ctx.obj = (config_file, overrides)
    if ctx.invoked_subcommand is not None:
        return
    settings = load(config_file, overrides)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from miner_server.server import StartupFailed, run

    try:
        run(settings)
    except (ConfigError, CatalogError, EngineError, StartupFailed) as exc:
        raise click.ClickException(str(exc)) from exc


@command.command("serve-axon")
@click.option("--ip", required=True, help="Public IP address validators reach this miner at.")
@click.option("--external-port", type=int, default=None, help="Port to announce (default: port).")
@click.option(
    "--network", default=None, help="local, finney, test or a ws(s):// URL (default: chain)."
)
@click.option("--netuid", type=int, default=None, help="Subnet (default: chain.netuid).")
@click.option(
    "--local-file", default=None, help="Local network file (network local; default: setting)."
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The server's TLS certificate (PEM or DER); its SHA-256 fingerprint is published.",
)
@click.pass_context
def serve_axon(
    ctx: click.Context,
    ip: str,
    external_port: int | None,
    network: str | None,
    netuid: int | None,
    local_file: str | None,
    tls_cert: Path | None,
) -> None:
    """Announce this miner's address on the chain (or in the local network file)."""
    config_file, overrides = ctx.obj
    chain = {
        key: value
        for key, value in (("network", network), ("netuid", netuid), ("local_file", local_file))
        if value is not None
    }
    if chain:
        overrides = {**overrides, "chain": chain}
    settings = load(config_file, overrides)
    from miner_server.app import load_keypair
    from miner_server.axon import announce_chain, announce_local, announcement

    try:
        what = announcement(ip, external_port or settings.port, tls_cert)
        keypair = load_keypair(settings.wallet)
        if settings.chain.network == "local":
            if not settings.chain.local_file:
                raise ConfigError("chain.local_file: required to announce on the local network")
            neuron = announce_local(Path(settings.chain.local_file), keypair.ss58_address, what)
            click.echo(f"uid {neuron.uid} {neuron.hotkey} now serves {neuron.axon}")
            return
        wallet = _wallet(settings)
        confirmation = asyncio.run(announce_chain(settings.chain, wallet, what))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    tls = f" (TLS {what.tls_fingerprint[:16]}…)" if what.tls_fingerprint else ""
    click.echo(
        f"{keypair.ss58_address} serves {what.ip}:{what.port}{tls} on netuid "
        f"{settings.chain.netuid} ({settings.chain.network}): {confirmation}"
    )


def _wallet(settings: MinerSettings) -> Any:
    import bittensor as bt

    wallet = settings.wallet
    kwargs = {"path": str(Path(wallet.path).expanduser())} if wallet.path else {}
    return bt.Wallet(name=wallet.name, hotkey=wallet.hotkey, **kwargs)
