"""`sn19 prices set|list|reset`: per-task prices (overrides of the catalog's defaults).

Prices on the command line are credits: per 1M input tokens, per 1M output tokens, per image
step. They are stored as micro-credits.
"""

from __future__ import annotations

import click

from billing.components import Billing
from billing.format import render_table
from billing.money import format_credits, parse_credits
from billing.price_book import PriceListing
from protocol.catalog import Price
from sn19.commands.db import config_option, default_actor, run_billing


def _amount(text: str | None, hint: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_credits(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None


@click.group()
def command() -> None:
    """Set and list prices per task."""


@command.command("list")
@config_option
def list_cmd(config_file: str | None) -> None:
    """Effective prices per task (credits), and where each comes from."""

    async def action(billing: Billing) -> list[PriceListing]:
        return await billing.prices.listing()

    rows = []
    for item in run_billing(config_file, action, use_redis=False):
        price = item.effective
        rows.append(
            [
                item.task,
                item.kind,
                format_credits(price.input_per_million),
                format_credits(price.output_per_million),
                format_credits(price.per_step),
                "override" if item.override else "catalog",
                "" if item.enabled else "disabled",
            ]
        )
    headers = ["task", "kind", "input /1M", "output /1M", "per step", "source", ""]
    click.echo(render_table(headers, rows))


@command.command("set")
@config_option
@click.argument("task")
@click.option("--input", "input_text", default=None, help="Credits per 1M input tokens.")
@click.option("--output", "output_text", default=None, help="Credits per 1M output tokens.")
@click.option("--per-step", "step_text", default=None, help="Credits per image step.")
def set_cmd(
    config_file: str | None,
    task: str,
    input_text: str | None,
    output_text: str | None,
    step_text: str | None,
) -> None:
    """Override TASK's price; fields not given keep their current value. Gateways apply it
    within billing.price_cache_ttl_s."""
    new_input = _amount(input_text, "--input")
    new_output = _amount(output_text, "--output")
    new_step = _amount(step_text, "--per-step")
    if new_input is None and new_output is None and new_step is None:
        raise click.UsageError("give at least one of --input, --output, --per-step")

    async def action(billing: Billing) -> Price:
        current = next((p for p in await billing.prices.listing() if p.task == task), None)
        if current is None:
            raise ValueError(f"no task {task!r} in the catalog")
        base = current.effective
        price = Price(
            input_per_million=base.input_per_million if new_input is None else new_input,
            output_per_million=base.output_per_million if new_output is None else new_output,
            per_step=base.per_step if new_step is None else new_step,
        )
        await billing.prices.set(task, price, actor=default_actor())
        return price

    price = run_billing(config_file, action, use_redis=False)
    click.echo(
        f"{task}: input {format_credits(price.input_per_million)} /1M, output "
        f"{format_credits(price.output_per_million)} /1M, per step {format_credits(price.per_step)}"
    )


@command.command("reset")
@config_option
@click.argument("task")
def reset(config_file: str | None, task: str) -> None:
    """Drop TASK's override: back to the catalog's price."""

    async def action(billing: Billing) -> bool:
        return await billing.prices.reset(task)

    removed = run_billing(config_file, action, use_redis=False)
    click.echo(f"{task}: back to the catalog price" if removed else f"{task}: had no override")
