"""`sn19 init validator|miner`: a commented settings file from a few answers, and the wallet it
names (created when missing).

The file is TOML that ``Settings.from_env`` (validator) or ``MinerSettings.from_env`` (miner)
loads; every value written is one of the flags (or its default), every other setting keeps its
default and is listed in docs/configuration.md. Secrets are never written: the next steps say
which environment variables carry them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def toml_str(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class WalletAnswers:
    name: str
    hotkey: str
    path: str  # empty: the SDK's default, ~/.bittensor/wallets


@dataclass(frozen=True, slots=True)
class ValidatorAnswers:
    data_dir: str
    catalog: str
    network: str
    netuid: int
    database_url: str
    redis_url: str
    wallet: WalletAnswers
    gateway_host: str
    gateway_port: int
    public_url: str
    billing: bool
    checker_metrics_port: int
    scoring_metrics_port: int


@dataclass(frozen=True, slots=True)
class MinerAnswers:
    catalog: str
    network: str
    netuid: int
    host: str
    port: int
    wallet: WalletAnswers
    tasks: list[str] = field(default_factory=list)


def _wallet_section(wallet: WalletAnswers) -> list[str]:
    return [
        "[wallet]",
        "# The bittensor wallet (coldkey name) and hotkey this process signs with.",
        f"name = {toml_str(wallet.name)}",
        f"hotkey = {toml_str(wallet.hotkey)}",
        "# The wallets directory; empty: ~/.bittensor/wallets.",
        f"path = {toml_str(wallet.path)}",
    ]


def validator_toml(a: ValidatorAnswers, *, written_by: str) -> str:
    lines = [
        f"# sn19 validator settings, written by `{written_by}`.",
        "# The environment overrides any value here: SN19_<SECTION>__<KEY>, e.g.",
        "# SN19_DATABASE__URL.",
        "# Every setting and its default: docs/configuration.md.",
        "",
        "# Local files: the SQLite database when database.url is empty, generated images.",
        f"data_dir = {toml_str(a.data_dir)}",
        '# "production" (subnet 19\'s tasks), "dev" (tiny local models), or a catalog TOML file.',
        f"catalog = {toml_str(a.catalog)}",
        'environment = "production"',
        "",
        "[database]",
        "# PostgreSQL when several processes or replicas share it",
        "# (postgresql+asyncpg://user@host:5432/sn19; the password from SN19_DATABASE__URL rather",
        "# than this file); empty: SQLite under data_dir (one machine only).",
        f"url = {toml_str(a.database_url)}",
        "",
        "[redis]",
        "# Shared by every process (routes, leader lock, check queue); empty: each process embeds",
        "# its own (one machine only).",
        f"url = {toml_str(a.redis_url)}",
        "",
        "[chain]",
        '# "finney" (mainnet), "test", a ws(s):// endpoint, or "local" (a file-backed dev chain).',
        f"network = {toml_str(a.network)}",
        f"netuid = {a.netuid}",
        "",
        *_wallet_section(a.wallet),
        "",
        "[gateway]",
        "# Where `sn19 gateway` listens (behind a TLS proxy: 127.0.0.1 or the proxy's network).",
        f"host = {toml_str(a.gateway_host)}",
        f"port = {a.gateway_port}",
        "# The address customers use (links in the dashboard and in emails).",
        f"public_url = {toml_str(a.public_url)}",
        "",
        "[billing]",
        "# Prepaid credits and API keys (docs/billing.md). The API-key HMAC secret is not kept",
        "# here: set SN19_BILLING__KEY_HASH_SECRET in every gateway's environment.",
        f"enabled = {'true' if a.billing else 'false'}",
        "",
        "[checker]",
        "# Prometheus metrics of `sn19 checker` on this port (/metrics); 0: not served.",
        'metrics_host = "127.0.0.1"',
        f"metrics_port = {a.checker_metrics_port}",
        "",
        "[scoring]",
        "# Prometheus metrics of `sn19 scoring` on this port (/metrics); 0: not served.",
        'metrics_host = "127.0.0.1"',
        f"metrics_port = {a.scoring_metrics_port}",
        "",
    ]
    return "\n".join(lines)


def miner_toml(a: MinerAnswers, *, written_by: str) -> str:
    tasks = ", ".join(toml_str(task) for task in a.tasks)
    lines = [
        f"# sn19 miner settings, written by `{written_by}`.",
        "# The environment overrides any value here: SN19_MINER_<KEY>, e.g. SN19_MINER_PORT.",
        "# Every setting: docs/mining.md.",
        "",
        "# Validators must reach this address (the one `sn19 miner serve-axon` announces).",
        f"host = {toml_str(a.host)}",
        f"port = {a.port}",
        '# "production" (subnet 19\'s tasks), "dev" (tiny local models), or a catalog TOML file.',
        f"catalog = {toml_str(a.catalog)}",
        "# Task ids to serve; empty: every enabled task of the catalog.",
        f"tasks = [{tasks}]",
        "",
        *_wallet_section(a.wallet),
        "",
        "[chain]",
        '# "finney" (mainnet), "test", a ws(s):// endpoint, or "local" (a file-backed dev chain).',
        f"network = {toml_str(a.network)}",
        f"netuid = {a.netuid}",
        "",
        "# Each served task can name its engine, its concurrency and its capacity, e.g. in front",
        "# of a vLLM server you already run (docs/mining.md):",
        '# [task."llama-3.1-8b-instruct"]',
        "# concurrency = 16",
        '# engine = { type = "forward", model = "unsloth/Meta-Llama-3.1-8B-Instruct",',
        '#            options = { base_url = "http://127.0.0.1:8000/v1" } }',
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class WalletResult:
    hotkey_address: str
    created_coldkey: bool
    created_hotkey: bool


def ensure_wallet(
    wallet: WalletAnswers,
    *,
    coldkey_password: str | None,
    show_mnemonic: Callable[[str, str], None],
) -> WalletResult:
    """Load the wallet, creating its coldkey (encrypted with ``coldkey_password``; None: not
    encrypted) and hotkey when missing. Each new key's mnemonic goes to
    ``show_mnemonic(kind, words)``: it is the only way to recover the key."""
    import bittensor as bt

    kwargs = {"path": str(Path(wallet.path).expanduser())} if wallet.path else {}
    the_wallet = bt.Wallet(name=wallet.name, hotkey=wallet.hotkey, **kwargs)
    created_coldkey = created_hotkey = False
    if not the_wallet.coldkeypub_file.exists_on_device():
        the_wallet.create_new_coldkey(
            use_password=coldkey_password is not None,
            coldkey_password=coldkey_password,
            overwrite=False,
            suppress=True,
            on_mnemonic=lambda words: show_mnemonic("coldkey", words),
        )
        created_coldkey = True
    if not the_wallet.hotkey_file.exists_on_device():
        the_wallet.create_new_hotkey(
            use_password=False,
            overwrite=False,
            suppress=True,
            on_mnemonic=lambda words: show_mnemonic("hotkey", words),
        )
        created_hotkey = True
    address: str = the_wallet.hotkey.ss58_address
    return WalletResult(address, created_coldkey, created_hotkey)
