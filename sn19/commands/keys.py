"""`sn19 keys create|list|revoke|update|rotate`: API keys (the secret is shown once)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from billing.components import Billing
from billing.format import format_time, parse_expiry, render_table
from billing.keys.service import KEEP, CreatedKey, KeyInfo
from billing.money import format_credits, parse_credits
from sn19.commands.db import config_option, default_actor, load_settings, redis_note, run_billing


def _models(text: str | None) -> list[str] | None:
    if text is None:
        return None
    models = [m.strip() for m in text.split(",") if m.strip()]
    if not models:
        raise click.BadParameter("name at least one model", param_hint="--models")
    return models


def _credits(text: str | None, hint: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_credits(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_expiry(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from None


def _cap(value: int | None) -> str:
    return format_credits(value) if value is not None else "-"


def _row(key: KeyInfo, now: datetime) -> list[object]:
    state = "revoked" if key.revoked else ("expired" if not key.active(now) else "active")
    return [
        key.id,
        key.account_id,
        key.name,
        key.display,
        state,
        ",".join(key.allowed_models) if key.allowed_models is not None else "*",
        key.rpm_limit if key.rpm_limit is not None else "-",
        key.tpm_limit if key.tpm_limit is not None else "-",
        _cap(key.daily_spend_cap),
        _cap(key.monthly_spend_cap),
        format_time(key.expires_at) or "never",
        format_time(key.created_at),
    ]


HEADERS = [
    "id",
    "account",
    "name",
    "key",
    "state",
    "models",
    "rpm",
    "tpm",
    "daily cap",
    "monthly cap",
    "expires (UTC)",
    "created (UTC)",
]


def _show_secret(created: CreatedKey, verb: str) -> None:
    key = created.key
    click.echo(f"API key {key.id} '{key.name}' {verb} for account {key.account_id}.")
    click.echo("")
    click.echo(f"    {created.secret}")
    click.echo("")
    click.echo("Copy it now: it is shown only once and cannot be recovered.")


@click.group()
def command() -> None:
    """Manage API keys."""


@command.command("create")
@config_option
@click.option("--account", "account_id", type=int, required=True, help="Owning account id.")
@click.option("--name", default="default", show_default=True)
@click.option("--models", default=None, help="Comma-separated allowlist (default: every model).")
@click.option("--rpm", type=click.IntRange(min=0), default=None, help="Requests/min; 0: unlimited.")
@click.option("--tpm", type=click.IntRange(min=0), default=None, help="Tokens/min (0: unlimited).")
@click.option("--daily-cap", default=None, help="Spend cap per UTC day, in credits.")
@click.option("--monthly-cap", default=None, help="Spend cap per UTC month, in credits.")
@click.option("--expires", default=None, help="e.g. 30d, 12h, 2026-12-31 (default: never).")
def create(
    config_file: str | None,
    account_id: int,
    name: str,
    models: str | None,
    rpm: int | None,
    tpm: int | None,
    daily_cap: str | None,
    monthly_cap: str | None,
    expires: str | None,
) -> None:
    """Create a key; limits not given come from billing.default_rpm / default_tpm."""
    kwargs: dict[str, Any] = {
        "allowed_models": _models(models),
        "rpm_limit": KEEP if rpm is None else rpm,
        "tpm_limit": KEEP if tpm is None else tpm,
        "daily_spend_cap": _credits(daily_cap, "--daily-cap"),
        "monthly_spend_cap": _credits(monthly_cap, "--monthly-cap"),
        "expires_at": _expiry(expires),
        "actor": default_actor(),
    }

    async def action(billing: Billing) -> CreatedKey:
        return await billing.keys.create(account_id, name, **kwargs)

    _show_secret(run_billing(config_file, action), "created")


@command.command("list")
@config_option
@click.option("--account", "account_id", type=int, default=None, help="Only this account's keys.")
def list_cmd(config_file: str | None, account_id: int | None) -> None:
    """List keys (secrets are never shown again; the key column is prefix…last4)."""

    async def action(billing: Billing) -> list[KeyInfo]:
        return await billing.keys.list_keys(account_id)

    keys = run_billing(config_file, action, use_redis=False)
    now = datetime.now(UTC)
    click.echo(render_table(HEADERS, [_row(k, now) for k in keys]) if keys else "no API keys")


def _change(config_file: str | None, change: Callable[[Billing], Any], message: str) -> None:
    result = run_billing(config_file, change)
    if isinstance(result, CreatedKey):
        _show_secret(result, "rotated (the old secret no longer works)")
    else:
        click.echo(message)
        click.echo(render_table(HEADERS, [_row(result, datetime.now(UTC))]))
    note = redis_note(load_settings(config_file))
    if note:
        click.echo(note, err=True)


@command.command("revoke")
@config_option
@click.argument("key_id", type=int)
def revoke(config_file: str | None, key_id: int) -> None:
    """Revoke a key: every gateway rejects it within seconds (401)."""
    _change(config_file, lambda b: b.keys.revoke(key_id), f"API key {key_id} revoked")


@command.command("rotate")
@config_option
@click.argument("key_id", type=int)
def rotate(config_file: str | None, key_id: int) -> None:
    """Give a key a new secret (same id, limits and history); the old secret stops working."""
    _change(config_file, lambda b: b.keys.rotate(key_id), "")


@command.command("update")
@config_option
@click.argument("key_id", type=int)
@click.option("--name", default=None)
@click.option("--models", default=None, help="Comma-separated allowlist.")
@click.option("--all-models", is_flag=True, help="Remove the allowlist.")
@click.option("--rpm", type=click.IntRange(min=0), default=None, help="0: unlimited.")
@click.option("--tpm", type=click.IntRange(min=0), default=None, help="0: unlimited.")
@click.option("--daily-cap", default=None, help="Credits per UTC day; 'none' removes it.")
@click.option("--monthly-cap", default=None, help="Credits per UTC month; 'none' removes it.")
@click.option("--expires", default=None, help="e.g. 30d, 2026-12-31, or 'never'.")
def update(
    config_file: str | None,
    key_id: int,
    name: str | None,
    models: str | None,
    all_models: bool,
    rpm: int | None,
    tpm: int | None,
    daily_cap: str | None,
    monthly_cap: str | None,
    expires: str | None,
) -> None:
    """Change a key's name, allowlist, limits, caps or expiry (options not given stay)."""
    if models is not None and all_models:
        raise click.UsageError("--models and --all-models exclude each other")
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if models is not None:
        changes["allowed_models"] = _models(models)
    if all_models:
        changes["allowed_models"] = None
    if rpm is not None:
        changes["rpm_limit"] = rpm
    if tpm is not None:
        changes["tpm_limit"] = tpm
    for option, field, text in (
        ("--daily-cap", "daily_spend_cap", daily_cap),
        ("--monthly-cap", "monthly_spend_cap", monthly_cap),
    ):
        if text is not None:
            changes[field] = None if text.lower() == "none" else _credits(text, option)
    if expires is not None:
        changes["expires_at"] = _expiry(expires)
    if not changes:
        raise click.UsageError("nothing to change")
    _change(config_file, lambda b: b.keys.update(key_id, **changes), f"API key {key_id} updated")
