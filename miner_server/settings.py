"""Typed settings of the miner server (`sn19 miner`).

Built once per process by ``MinerSettings.from_env()`` and passed to ``create_app``; nothing else
in ``miner_server`` reads the environment. Sources, later wins: defaults < TOML file
(``--config`` or ``SN19_MINER_CONFIG``) < environment (``SN19_MINER_<FIELD>``, nested sections
with ``__``: ``SN19_MINER_PORT=8092``, ``SN19_MINER_WALLET__HOTKEY=hk1``) < explicit overrides
(command-line flags, tests).

A TOML file looks like::

    catalog = "production"
    tasks = ["llama-3.1-8b-instruct"]
    port = 8091

    [wallet]
    name = "miner"
    hotkey = "default"

    [task."llama-3.1-8b-instruct"]
    concurrency = 16
    capacity = 60000
    engine = { type = "forward", model = "unsloth/Meta-Llama-3.1-8B-Instruct",
               options = { base_url = "http://127.0.0.1:8000/v1" } }
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from protocol.catalog import EngineSpec, TaskKind
from protocol.config import ConfigError, load_settings

ENV_PREFIX = "SN19_MINER"
CONFIG_ENV = f"{ENV_PREFIX}_CONFIG"

# In-flight requests per task when the task's table does not say (SPEC §2: a miner answers 429
# beyond it). Image generation is heavy: one at a time.
DEFAULT_CONCURRENCY: dict[TaskKind, int] = {"chat": 8, "embedding": 8, "image": 1}
# The stake gate's default threshold on mainnet (upstream's MIN_STAKE_THRESHOLD).
FINNEY_MIN_STAKE = 1000.0


class WalletSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str = "miner"
    hotkey: str = "default"
    # Empty: ~/.bittensor/wallets (the SDK's default).
    path: str = ""


class AuthSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """btauth/1 freshness window: a nonce older than ``max_age_s`` or more than
    ``allowed_skew_s`` in the future is refused."""

    max_age_s: Annotated[float, Meta(gt=0)] = 10.0
    allowed_skew_s: Annotated[float, Meta(ge=0)] = 2.0


class ChainSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Where the stake gate reads the metagraph, and the gate's threshold (docs/mining.md).

    With ``network = "local"`` and no ``local_file`` there is no metagraph: every validator with
    a valid signature is served in full (a warning says so at start). Set the network for a
    real subnet."""

    # "local" (the file-backed dev network), "finney", "test", or a ws(s):// endpoint.
    network: str = "local"
    netuid: int = 19
    # The local network's neuron file (network = "local").
    local_file: str = ""
    # Least stake (the chain's stake weight, alpha units) a validator needs; below it, 403.
    # Empty: 1000 on finney (upstream's threshold), 0 elsewhere.
    min_stake: Annotated[float, Meta(ge=0)] | None = None
    # The metagraph is re-read this often (real networks; the local file when it changes).
    refresh_s: Annotated[float, Meta(gt=0)] = 300.0
    # The longest one metagraph read may take.
    timeout_s: Annotated[float, Meta(gt=0)] = 60.0

    @property
    def effective_min_stake(self) -> float:
        if self.min_stake is not None:
            return self.min_stake
        return FINNEY_MIN_STAKE if self.network == "finney" else 0.0


class TaskSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Per-task overrides (``[task."<id>"]``)."""

    # Replaces the catalog's engine for this task, e.g. forwarding to a vLLM server.
    engine: EngineSpec | None = None
    # Most requests in flight at once; beyond it, 429. Default: by kind (chat 8, embedding 8,
    # image 1).
    concurrency: Annotated[int, Meta(ge=1, le=100_000)] | None = None
    # Volume offered to each validator per period, in the task's unit. Default: max_capacity.
    capacity: Annotated[float, Meta(ge=0)] | None = None


class MinerSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    host: str = "0.0.0.0"  # noqa: S104 - a miner must be reachable by validators
    port: Annotated[int, Meta(ge=0, le=65535)] = 8091
    # "dev", "production", or a path to a catalog TOML file.
    catalog: str = "dev"
    # Task ids to serve; empty: every enabled task of the catalog.
    tasks: list[str] = []
    wallet: WalletSettings = WalletSettings()
    task: dict[str, TaskSettings] = {}
    # Torch device for the engines ("cpu", "cuda", "cuda:1"); empty: the engine picks.
    device: str = ""
    auth: AuthSettings = AuthSettings()
    # Largest request body accepted (413 beyond): image edits carry two base64 images.
    max_body_bytes: Annotated[int, Meta(ge=1024)] = 40 * 1024 * 1024
    server: Literal["granian", "uvicorn"] = "granian"
    log_level: str = "INFO"
    chain: ChainSettings = ChainSettings()
    # What POST /v1/capacity offers a validator: "stake_share" splits each task's capacity and
    # concurrency by the validator's share of stake (upstream's reference policy), "full"
    # offers every validator everything.
    capacity_policy: Literal["stake_share", "full"] = "stake_share"

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        config_file: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> MinerSettings:
        environ = os.environ if env is None else env
        path = config_file or environ.get(CONFIG_ENV)
        text = None
        if path:
            try:
                text = Path(path).read_text("utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read settings file {path!r}: {exc.strerror}") from exc
        # SN19_MINER_CONFIG names the file; it is not a field.
        fields_env = {key: value for key, value in environ.items() if key != CONFIG_ENV}
        return load_settings(
            cls, env=fields_env, prefix=ENV_PREFIX, toml_text=text, overrides=overrides
        )

    def for_task(self, task_id: str) -> TaskSettings:
        return self.task.get(task_id, _NO_OVERRIDES)


_NO_OVERRIDES = TaskSettings()
