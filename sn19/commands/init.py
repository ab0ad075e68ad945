"""`sn19 init validator|miner`: write a commented settings file from flags and create the
wallet it names when missing (``sn19.initconfig``), then print the next steps.

Non-interactive: every answer is a flag with a default. A new coldkey is encrypted with a
password asked on the terminal, or left unencrypted with ``--no-coldkey-password`` (say so
deliberately: a validator's server needs only the hotkey).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from sn19.initconfig import (
    MinerAnswers,
    ValidatorAnswers,
    WalletAnswers,
    WalletResult,
    ensure_wallet,
    miner_toml,
    validator_toml,
)


def _output_option(default: str) -> Callable[[Any], Any]:
    return click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False, path_type=Path),
        default=default,
        show_default=True,
        help="Where to write the settings file.",
    )


def _wallet_options(default_name: str) -> Callable[[Any], Any]:
    def decorate(f: Any) -> Any:
        for option in reversed(
            [
                click.option("--wallet-name", default=default_name, show_default=True),
                click.option("--wallet-hotkey", default="default", show_default=True),
                click.option(
                    "--wallet-path",
                    default="",
                    help="Wallets directory (default ~/.bittensor/wallets).",
                ),
                click.option(
                    "--create-wallet/--no-create-wallet",
                    default=True,
                    show_default=True,
                    help="Create the coldkey and hotkey when missing.",
                ),
                click.option(
                    "--no-coldkey-password",
                    is_flag=True,
                    help="Create a missing coldkey unencrypted instead of asking for a password.",
                ),
                click.option("--force", is_flag=True, help="Overwrite an existing settings file."),
            ]
        ):
            f = option(f)
        return f

    return decorate


def _network_options(f: Any) -> Any:
    f = click.option("--netuid", type=int, default=19, show_default=True)(f)
    return click.option(
        "--network",
        default="finney",
        show_default=True,
        help='"finney", "test", a ws(s):// endpoint, or "local".',
    )(f)


def _check_output(output: Path, force: bool) -> None:
    if output.exists() and not force:
        raise click.ClickException(f"{output} exists; pass --force to overwrite it")


def _wallet(answers: WalletAnswers, create: bool, no_password: bool) -> WalletResult | None:
    if not create:
        return None
    password: str | None = None

    def needs_coldkey() -> bool:
        import bittensor as bt

        kwargs = {"path": str(Path(answers.path).expanduser())} if answers.path else {}
        wallet = bt.Wallet(name=answers.name, hotkey=answers.hotkey, **kwargs)
        return not wallet.coldkeypub_file.exists_on_device()

    if not no_password and needs_coldkey():
        if not sys.stdin.isatty():
            raise click.ClickException(
                f"wallet {answers.name} has no coldkey: create it with btcli, or pass "
                "--no-coldkey-password to create it unencrypted, or run this in a terminal to "
                "be asked for a password"
            )
        password = click.prompt(
            "Password for the new coldkey", hide_input=True, confirmation_prompt=True
        )

    def show(kind: str, words: str) -> None:
        key = f"{answers.name}/{answers.hotkey}" if kind == "hotkey" else answers.name
        click.echo(
            f"\nNew {kind} {key} mnemonic (write it down offline; it is the only way to "
            f"recover the key):\n    {words}\n"
        )

    return ensure_wallet(answers, coldkey_password=password, show_mnemonic=show)


def _no_password(option: str, url: str) -> None:
    """Secrets stay out of the file: a URL with a password belongs in the environment."""
    if url and urlsplit(url).password:
        raise click.ClickException(
            f"{option}: leave the password out of the file; set the whole URL in the "
            "environment instead (SN19_DATABASE__URL, SN19_REDIS__URL)"
        )


def _report(output: Path, result: WalletResult | None) -> None:
    click.echo(f"wrote {output}")
    if result is not None:
        made = [
            k
            for k, v in (("coldkey", result.created_coldkey), ("hotkey", result.created_hotkey))
            if v
        ]
        state = f"created its {' and '.join(made)}" if made else "already existed"
        click.echo(f"wallet: hotkey {result.hotkey_address} ({state})")


@click.group()
def command() -> None:
    """Write a settings file and create the wallet for a validator or a miner."""


@command.command("validator")
@_output_option("validator.toml")
@_wallet_options("validator")
@_network_options
@click.option("--data-dir", default="~/.sn19", show_default=True)
@click.option("--catalog", default="production", show_default=True)
@click.option(
    "--database-url",
    default="",
    help="postgresql+asyncpg://user@host:5432/sn19 (default: SQLite under the data directory).",
)
@click.option(
    "--redis-url", default="", help="redis://host:6379/0 (default: embedded per process)."
)
@click.option("--gateway-host", default="127.0.0.1", show_default=True)
@click.option("--gateway-port", type=int, default=8080, show_default=True)
@click.option("--public-url", default="", help="The address customers use (https://…).")
@click.option("--billing/--no-billing", default=True, show_default=True)
@click.option("--checker-metrics-port", type=int, default=9101, show_default=True)
@click.option("--scoring-metrics-port", type=int, default=9102, show_default=True)
def validator(
    output: Path,
    wallet_name: str,
    wallet_hotkey: str,
    wallet_path: str,
    create_wallet: bool,
    no_coldkey_password: bool,
    force: bool,
    network: str,
    netuid: int,
    data_dir: str,
    catalog: str,
    database_url: str,
    redis_url: str,
    gateway_host: str,
    gateway_port: int,
    public_url: str,
    billing: bool,
    checker_metrics_port: int,
    scoring_metrics_port: int,
) -> None:
    """A validator's settings file (gateway, scoring, checker share it)."""
    _check_output(output, force)
    _no_password("--database-url", database_url)
    _no_password("--redis-url", redis_url)
    wallet = WalletAnswers(wallet_name, wallet_hotkey, wallet_path)
    answers = ValidatorAnswers(
        data_dir=data_dir,
        catalog=catalog,
        network=network,
        netuid=netuid,
        database_url=database_url,
        redis_url=redis_url,
        wallet=wallet,
        gateway_host=gateway_host,
        gateway_port=gateway_port,
        public_url=public_url,
        billing=billing,
        checker_metrics_port=checker_metrics_port,
        scoring_metrics_port=scoring_metrics_port,
    )
    result = _wallet(wallet, create_wallet, no_coldkey_password)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(validator_toml(answers, written_by="sn19 init validator"), "utf-8")
    _report(output, result)
    config = shlex.quote(str(output))
    steps = []
    if billing:
        steps.append(
            "Put a long random secret in SN19_BILLING__KEY_HASH_SECRET for every process "
            "(e.g. `openssl rand -hex 32`); changing it later invalidates every API key."
        )
    steps += [
        f"Register hotkey {wallet_name}/{wallet_hotkey} on subnet {netuid} ({network}) with btcli.",
        f"Create the tables: sn19 db upgrade --config {config}",
        f"Check everything: sn19 doctor --config {config}",
        f"Run the processes: sn19 gateway --config {config}; sn19 scoring --config {config}; "
        f"sn19 checker --config {config} (docs/operations.md for a whole deployment).",
    ]
    click.echo("\nNext steps:")
    for number, step in enumerate(steps, 1):
        click.echo(f"  {number}. {step}")


@command.command("miner")
@_output_option("miner.toml")
@_wallet_options("miner")
@_network_options
@click.option("--catalog", default="production", show_default=True)
@click.option("--host", default="0.0.0.0", show_default=True)  # noqa: S104 - validators connect
@click.option("--port", type=int, default=8091, show_default=True)
@click.option("--task", "tasks", multiple=True, help="Task id to serve (repeatable; default all).")
def miner(
    output: Path,
    wallet_name: str,
    wallet_hotkey: str,
    wallet_path: str,
    create_wallet: bool,
    no_coldkey_password: bool,
    force: bool,
    network: str,
    netuid: int,
    catalog: str,
    host: str,
    port: int,
    tasks: tuple[str, ...],
) -> None:
    """A miner's settings file (`sn19 miner`)."""
    _check_output(output, force)
    wallet = WalletAnswers(wallet_name, wallet_hotkey, wallet_path)
    answers = MinerAnswers(
        catalog=catalog,
        network=network,
        netuid=netuid,
        host=host,
        port=port,
        wallet=wallet,
        tasks=list(tasks),
    )
    result = _wallet(wallet, create_wallet, no_coldkey_password)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(miner_toml(answers, written_by="sn19 init miner"), "utf-8")
    _report(output, result)
    config = shlex.quote(str(output))
    click.echo("\nNext steps:")
    for number, step in enumerate(
        [
            f"Register hotkey {wallet_name}/{wallet_hotkey} on subnet {netuid} ({network}) with "
            "btcli.",
            f"Name each task's engine in {output} (the commented example; docs/mining.md).",
            f"Announce the address: sn19 miner --config {config} serve-axon",
            f"Serve: sn19 miner --config {config}",
        ],
        1,
    ):
        click.echo(f"  {number}. {step}")
