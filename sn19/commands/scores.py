"""`sn19 scores`: explain weights, sync the metagraph on demand, list periods.

- ``sn19 scores show [--miner HOTKEY] [--run ID]``: the latest (or a given) weight calculation,
  from the database: every miner's weight, or one miner's inputs → factors → weight.
- ``sn19 scores sync``: read the metagraph now and store it (retrying while the chain is down).
- ``sn19 scores periods``: the recent periods and their contenders' scores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from core.db import Database
from core.settings import Settings
from protocol.config import ConfigError

if TYPE_CHECKING:
    from scoring.read.advice import PeriodFacts

T = TypeVar("T")

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Validator settings file (TOML); default: SN19_CONFIG / environment.",
)


def _settings(config_file: str | None) -> Settings:
    try:
        return Settings.from_env(config_file=config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _with_db(settings: Settings, action: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database.from_url(settings.database_url, settings.database)
        try:
            return await action(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except SQLAlchemyError as exc:
        raise click.ClickException(f"database error: {exc}") from None


@click.group()
def command() -> None:
    """Show scores and explain weights."""


@command.command("show")
@config_option
@click.option("--miner", "hotkey", default=None, help="Explain this miner's weight (hotkey).")
@click.option("--run", "run_id", type=int, default=None, help="A weight run id (default: latest).")
def show(config_file: str | None, hotkey: str | None, run_id: int | None) -> None:
    """Every miner's weight in the latest calculation, or how one miner's was computed."""
    from scoring.read.explain import explain_miner, miner_advice, summary
    from scoring.read.explain_data import period_facts
    from scoring.weights.runs import RunReport, load_run

    async def action(db: Database) -> str | None:
        report = await load_run(db, run_id)
        if report is None:
            return None
        if not hotkey:
            return summary(report)
        return explain_miner(report, hotkey, miner_advice(report, hotkey, await facts(db, report)))

    async def facts(db: Database, report: RunReport) -> dict[str, dict[int, PeriodFacts]]:
        wanted: dict[str, list[int]] = {}
        for _, row in report.factors:
            if row.hotkey == hotkey:
                wanted[row.task] = [entry.period_id for entry in row.history]
        async with db.read() as session:
            return await period_facts(session, hotkey or "", wanted)

    text = _with_db(_settings(config_file), action)
    if text is None:
        raise click.ClickException(
            "no weight calculation stored yet" if run_id is None else f"no weight run {run_id}"
        )
    click.echo(text)


@command.command("sync")
@config_option
@click.option("--attempts", default=5, show_default=True, help="Tries while the chain is down.")
def sync(config_file: str | None, attempts: int) -> None:
    """Read the metagraph from the chain now and store it (nodes, node_history)."""
    from core.chain import ChainUnavailable, chain_from_settings
    from core.wallet import load_signer
    from scoring.backoff import Backoff
    from scoring.sync import MetagraphSync

    settings = _settings(config_file)
    hotkey = load_signer(settings).hotkey

    async def action(db: Database) -> str:
        chain = chain_from_settings(settings, hotkey=hotkey)
        backoff = Backoff(
            initial_s=settings.chain.retry_initial_s, max_s=settings.chain.retry_max_s
        )
        syncer = MetagraphSync(db, chain, backoff=backoff)
        try:
            for attempt in range(1, attempts + 1):
                try:
                    _, report = await syncer.sync_once()
                    return str(report)
                except ChainUnavailable as exc:
                    if attempt == attempts:
                        raise click.ClickException(f"chain unreachable: {exc}") from None
                    delay = backoff.next_delay()
                    click.echo(f"chain unreachable ({exc}); retrying in {delay:.1f}s", err=True)
                    await asyncio.sleep(delay)
            raise click.ClickException("no attempt was made")
        finally:
            await chain.close()

    click.echo("metagraph synced: " + _with_db(settings, action))


@command.command("periods")
@config_option
@click.option("--limit", default=5, show_default=True, help="How many recent periods.")
def periods(config_file: str | None, limit: int) -> None:
    """The recent periods with each contender's quota, counters and period score."""
    from core.db.tables.scoring import Contender, Period

    async def action(db: Database) -> list[str]:
        lines: list[str] = []
        async with db.read() as session:
            rows = (
                await session.scalars(select(Period).order_by(Period.id.desc()).limit(limit))
            ).all()
            for period in rows:
                lines.append(
                    f"period {period.id} [{period.status}] "
                    f"{period.started_at:%Y-%m-%d %H:%M:%S} → {period.ends_at:%H:%M:%S}"
                )
                contenders = (
                    await session.scalars(
                        select(Contender)
                        .where(Contender.period_id == period.id)
                        .order_by(Contender.task, Contender.uid)
                    )
                ).all()
                for c in contenders:
                    score = "-" if c.period_score is None else f"{c.period_score:.4f}"
                    lines.append(
                        f"  {c.task:<24} uid {c.uid:>4}  capacity {c.capacity:>10.1f}  "
                        f"quota {c.quota:>9.1f}  consumed {c.consumed:>9.1f}  "
                        f"req {c.requests:>5}  429 {c.rate_limited:>4}  fail {c.failed:>4}  "
                        f"score {score}"
                    )
        return lines

    lines = _with_db(_settings(config_file), action)
    click.echo("\n".join(lines) if lines else "no periods yet")
