"""What `sn19 dev` prepares and starts, in order (kept apart from the terminal UI)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.redis import EmbeddedRedis
from core.settings import Settings
from protocol.catalog import resolve_catalog
from sn19.dev.layout import MinerLayout, ensure_wallet, render_toml, write_chain_file
from sn19.dev.supervisor import Child, sn19_argv

VALIDATOR_WALLET = "validator"
# Share of the production synthetic traffic an idle `sn19 dev` sends (scoring.quota_scale): each
# contender still gets at least one synthetic request per period (scoring.synthetic.plan), so
# scoring, checks and weights all run, at a few percent of a core instead of a quarter core per
# miner.
# `sn19 dev --full-synthetic` sends the full rate (1.0).
DEV_SYNTHETIC_SCALE = 0.02


@dataclass
class Step:
    label: str
    run: Callable[[], None]


@dataclass
class DevPlan:
    data_dir: Path
    base_url: str
    api_key: str
    chat_model: str
    redis: EmbeddedRedis
    credits: int = 1_000
    # The dashboard's dev administrator (e-mail, password), set by the preparation step.
    operator: tuple[str, str] = ("", "")
    prepare_steps: list[Step] = field(default_factory=list)
    children: list[tuple[Child, str, float]] = field(default_factory=list)


def validator_config(
    *,
    data_dir: Path,
    port: int,
    redis_url: str,
    period_s: float,
    synthetic_scale: float = DEV_SYNTHETIC_SCALE,
) -> str:
    """Billing is on: the gateway accepts the database keys (the dev key among them); the
    environment is "dev", so the built-in dev key-hash secret is allowed."""
    return render_toml(
        {
            "": {"data_dir": str(data_dir), "catalog": "dev", "environment": "dev"},
            "database": {"url": f"sqlite+aiosqlite:///{data_dir / 'sn19.db'}"},
            "redis": {"url": redis_url},
            "chain": {
                "network": "local",
                "local_file": str(data_dir / "chain.txt"),
                "local_block_time_s": 1.0,
                "local_weights_rate_limit": max(1, int(period_s)),
            },
            "wallet": {
                "name": VALIDATOR_WALLET,
                "hotkey": "default",
                "path": str(data_dir / "wallets"),
            },
            "gateway": {"host": "127.0.0.1", "port": port},
            "scoring": {"period_s": period_s, "quota_scale": synthetic_scale},
            "billing": {"enabled": True},
        }
    )


def miner_config(*, data_dir: Path, miner: MinerLayout) -> str:
    return render_toml(
        {
            "": {"host": "127.0.0.1", "port": miner.port, "catalog": "dev"},
            "wallet": {
                "name": miner.wallet_name,
                "hotkey": "default",
                "path": str(data_dir / "wallets"),
            },
            "chain": {"network": "local", "local_file": str(data_dir / "chain.txt")},
        }
    )


def build_plan(
    *,
    data_dir: Path,
    port: int,
    miner_count: int,
    miner_port: int,
    api_key: str,
    period_s: float,
    credits: int = 1_000,
    synthetic_scale: float = DEV_SYNTHETIC_SCALE,
) -> DevPlan:
    """``api_key``: a well-formed ``sk-sn19-`` secret (``billing.keys.generate_secret``); the
    billing step registers it on the dev account (or finds it there) with ``credits``."""
    catalog = resolve_catalog("dev")
    chat_model = next(task.id for task in catalog.enabled() if task.kind == "chat")
    redis = EmbeddedRedis(data_dir / "redis")
    plan = DevPlan(
        data_dir=data_dir,
        base_url=f"http://127.0.0.1:{port}",
        api_key=api_key,
        chat_model=chat_model,
        redis=redis,
        credits=credits,
    )
    wallets = data_dir / "wallets"
    configs = data_dir / "config"
    logs = data_dir / "logs"
    miners: list[MinerLayout] = []

    def prepare_wallets() -> None:
        hotkey = ensure_wallet(wallets, VALIDATOR_WALLET)
        miners.clear()
        for index in range(miner_count):
            name = f"miner-{index}"
            miners.append(
                MinerLayout(index, name, ensure_wallet(wallets, name), miner_port + index)
            )
        ours = {hotkey, *(m.hotkey for m in miners)}
        write_chain_file(data_dir / "chain.txt", validator_hotkey=hotkey, miners=miners, ours=ours)

    def write_configs() -> None:
        configs.mkdir(parents=True, exist_ok=True)
        (configs / "validator.toml").write_text(
            validator_config(
                data_dir=data_dir,
                port=port,
                redis_url=redis.url,
                period_s=period_s,
                synthetic_scale=synthetic_scale,
            ),
            "utf-8",
        )
        for miner in miners:
            (configs / f"{miner.name}.toml").write_text(
                miner_config(data_dir=data_dir, miner=miner), "utf-8"
            )
        for index in range(miner_count):
            miner = miners[index]
            plan.children.append(
                (
                    Child(
                        name=miner.name,
                        argv=sn19_argv("miner", "--config", str(configs / f"{miner.name}.toml")),
                        log_path=logs / f"{miner.name}.log",
                        health_url=f"{miner.url}/healthz",
                    ),
                    f"{miner.name} on :{miner.port} (loading models)",
                    300.0,
                )
            )
        validator_toml = str(configs / "validator.toml")
        plan.children.append(
            (
                Child(
                    name="scoring",
                    argv=sn19_argv("scoring", "--config", validator_toml),
                    log_path=logs / "scoring.log",
                    health_url=None,
                ),
                f"scoring loop (periods of {period_s:.0f}s)",
                60.0,
            )
        )
        plan.children.append(
            (
                Child(
                    name="checker",
                    argv=sn19_argv("checker", "--config", validator_toml),
                    log_path=logs / "checker.log",
                    health_url=None,
                ),
                "checker (models load on first job)",
                60.0,
            )
        )
        plan.children.append(
            (
                Child(
                    name="gateway",
                    argv=sn19_argv("gateway", "--config", validator_toml),
                    log_path=logs / "gateway.log",
                    health_url=f"http://127.0.0.1:{port}/healthz",
                ),
                f"gateway on :{port}",
                120.0,
            )
        )

    def prepare_billing() -> None:
        from billing.dev import prepare_dev_billing

        settings = Settings.from_env(config_file=str(configs / "validator.toml"))
        plan.api_key = prepare_dev_billing(settings, credits=plan.credits, secret=plan.api_key)

    def prepare_operator() -> None:
        from sn19.dev.operator import prepare_dev_operator

        settings = Settings.from_env(config_file=str(configs / "validator.toml"))
        plan.operator = prepare_dev_operator(settings)

    plan.prepare_steps = [
        Step("wallets and local network file", prepare_wallets),
        Step("process configuration", write_configs),
        Step(f"database, dev account ({credits} credits)", prepare_billing),
        Step("dashboard operator", prepare_operator),
    ]
    return plan
