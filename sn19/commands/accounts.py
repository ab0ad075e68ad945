"""`sn19 accounts create|list|suspend|activate`: customer accounts."""

from __future__ import annotations

import click

from billing.components import Billing
from billing.format import format_time, render_table
from billing.money import format_credits, parse_credits
from sn19.commands.db import config_option, default_actor, load_settings, redis_note, run_billing


@click.group()
def command() -> None:
    """Manage customer accounts."""


@command.command("create")
@config_option
@click.argument("name")
@click.option("--email", default=None, help="Contact e-mail (pre-fills Stripe Checkout).")
@click.option("--credits", "credits_text", default=None, help="Credits to grant at once (decimal).")
@click.option("--actor", default=None, help="Who is acting (ledger); default operator:<user>.")
def create(
    config_file: str | None,
    name: str,
    email: str | None,
    credits_text: str | None,
    actor: str | None,
) -> None:
    """Create an account (optionally with starting credits)."""
    amount = parse_credits(credits_text) if credits_text else 0

    async def action(billing: Billing) -> tuple[int, int]:
        account = await billing.accounts.create(name, email=email)
        balance = account.balance
        if amount:
            balance = await billing.accounts.grant(
                account.id, amount, actor=actor or default_actor(), reason="initial credits"
            )
        return account.id, balance

    account_id, balance = run_billing(config_file, action, use_redis=False)
    click.echo(f"account {account_id} '{name}' created; balance {format_credits(balance)} credits")


@command.command("list")
@config_option
def list_cmd(config_file: str | None) -> None:
    """List accounts with their balances."""

    async def action(billing: Billing) -> list[list[object]]:
        rows: list[list[object]] = []
        for account in await billing.accounts.list_accounts():
            held = (await billing.accounts.balance(account.id)).held
            rows.append(
                [
                    account.id,
                    account.name,
                    account.email or "",
                    account.status,
                    format_credits(account.balance),
                    format_credits(held),
                    format_time(account.created_at),
                ]
            )
        return rows

    rows = run_billing(config_file, action, use_redis=False)
    headers = ["id", "name", "email", "status", "available", "held", "created (UTC)"]
    click.echo(render_table(headers, rows) if rows else "no accounts")


def _set_status(config_file: str | None, account_id: int, status: str) -> None:
    async def action(billing: Billing) -> str:
        return (await billing.accounts.set_status(account_id, status)).name

    name = run_billing(config_file, action)
    click.echo(f"account {account_id} '{name}' is now {status}")
    note = redis_note(load_settings(config_file))
    if note:
        click.echo(note, err=True)


@command.command("suspend")
@config_option
@click.argument("account_id", type=int)
def suspend(config_file: str | None, account_id: int) -> None:
    """Suspend an account: its keys get 403 and new requests are refused."""
    _set_status(config_file, account_id, "suspended")


@command.command("activate")
@config_option
@click.argument("account_id", type=int)
def activate(config_file: str | None, account_id: int) -> None:
    """Re-activate a suspended account."""
    _set_status(config_file, account_id, "active")
