"""`sn19 credits grant|adjust`: credit changes by hand, each a ledger row naming who and why."""

from __future__ import annotations

import click

from billing.components import Billing
from billing.money import format_credits, parse_credits
from sn19.commands.db import config_option, default_actor, run_billing


@click.group()
def command() -> None:
    """Grant credits."""


def _post(
    config_file: str | None, account_id: int, amount: int, reason: str, actor: str | None, kind: str
) -> None:
    async def action(billing: Billing) -> int:
        return await billing.accounts.grant(
            account_id, amount, actor=actor or default_actor(), reason=reason, kind=kind
        )

    balance = run_billing(config_file, action, use_redis=False)
    click.echo(
        f"{kind} of {format_credits(amount)} credits to account {account_id}; "
        f"balance {format_credits(balance)}"
    )


@command.command("grant")
@config_option
@click.argument("account_id", type=int)
@click.argument("amount")
@click.option("--reason", required=True, help="Why (kept in the ledger).")
@click.option("--actor", default=None, help="Who is granting; default operator:<user>.")
def grant(
    config_file: str | None, account_id: int, amount: str, reason: str, actor: str | None
) -> None:
    """Give AMOUNT credits (decimal, e.g. 25 or 0.5) to ACCOUNT_ID."""
    try:
        micro = parse_credits(amount)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="AMOUNT") from None
    if micro <= 0:
        raise click.BadParameter(
            "must be positive (use `credits adjust` to debit)", param_hint="AMOUNT"
        )
    _post(config_file, account_id, micro, reason, actor, "grant")


@command.command("adjust", context_settings={"ignore_unknown_options": True})
@config_option
@click.argument("account_id", type=int)
@click.argument("amount")
@click.option("--reason", required=True, help="Why (kept in the ledger).")
@click.option("--actor", default=None, help="Who is adjusting; default operator:<user>.")
def adjust(
    config_file: str | None, account_id: int, amount: str, reason: str, actor: str | None
) -> None:
    """Correct ACCOUNT_ID's balance by AMOUNT credits (negative debits; may go below zero)."""
    try:
        micro = parse_credits(amount, allow_negative=True)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="AMOUNT") from None
    if micro == 0:
        raise click.BadParameter("must not be zero", param_hint="AMOUNT")
    _post(config_file, account_id, micro, reason, actor, "adjustment")
