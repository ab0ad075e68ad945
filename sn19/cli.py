"""`sn19`: every subcommand lives in ``sn19/commands/<name>.py`` and is imported only when it is
run, so `sn19 miner` never imports validator code and `--help` stays fast."""

from __future__ import annotations

import importlib
import importlib.util

import click

# name -> (module, help)
COMMANDS: dict[str, tuple[str, str]] = {
    "dev": ("sn19.commands.dev", "Run the whole validator plus local miners on this machine."),
    "gateway": ("sn19.commands.gateway", "Serve the OpenAI-compatible API (and the dashboard)."),
    "miner": ("sn19.commands.miner", "Run the bundled miner server."),
    "scoring": ("sn19.commands.scoring", "Run the validator loop (periods, synthetics, weights)."),
    "checker": ("sn19.commands.checker", "Run a check-queue worker."),
    "db": ("sn19.commands.db", "Database migrations."),
    "keys": ("sn19.commands.keys", "Manage API keys."),
    "accounts": ("sn19.commands.accounts", "Manage customer accounts."),
    "credits": ("sn19.commands.credits", "Grant credits."),
    "prices": ("sn19.commands.prices", "Set and list prices per task."),
    "ledger": ("sn19.commands.ledger", "Verify the credit ledger."),
    "scores": ("sn19.commands.scores", "Show scores and explain weights."),
    "receipts": ("sn19.commands.receipts", "Verify a miner's receipt offline."),
    "models": ("sn19.commands.models", "Prepare and inspect model files."),
    "operators": ("sn19.commands.operators", "Manage dashboard operators (staff users)."),
    "config": ("sn19.commands.config", "Show the effective settings."),
    "doctor": ("sn19.commands.doctor", "Check the settings against the machine."),
    "init": ("sn19.commands.init", "Write a settings file and create the wallet."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        available = []
        for name, (module, _help) in COMMANDS.items():
            if importlib.util.find_spec(module) is not None:
                available.append(name)
        return sorted(available)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, _help = entry
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sn19")
def main() -> None:
    """sn19: subnet-19 validator gateway, checker, scoring, and the miner server."""
