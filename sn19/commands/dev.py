"""`sn19 dev`: the whole validator plus local miners on this machine, on the dev catalog.

Starts an embedded Redis, writes wallets and the local network file under the data directory,
runs the database migrations and creates the ``dev`` account with credits and an API key (billing
is on, as in production), starts N miners, the gateway, the scoring loop and a checker as separate
processes on real ports, shows progress while they load their models, prints the base URL and the
API key, and stops everything cleanly on Ctrl-C.
"""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType

import click

from sn19.dev.plan import DEV_SYNTHETIC_SCALE, DevPlan, build_plan
from sn19.dev.supervisor import Child, StartupFailed, wait_healthy


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _start(child: Child, *, label: str, timeout: float) -> None:
    """One progress line per process: a spinner on a terminal; elsewhere (a log file, a pipe)
    the label once and "ready" after it, never the line twice."""
    click.echo(f"  {label:<44}", nl=False)
    child.start()
    frames = "|/-\\"
    tick = [0]
    terminal = sys.stdout.isatty()

    def spin(waited: float) -> None:
        tick[0] += 1
        if terminal:
            click.echo(f"\r  {label:<44}{frames[tick[0] % 4]} {waited:4.0f}s", nl=False)

    waited = wait_healthy(child, timeout=timeout, on_tick=spin)
    again = f"\r  {label:<44}" if terminal else ""
    click.echo(again + click.style("ready", fg="green") + f" ({waited:.1f}s)")


def _run(plan: DevPlan) -> None:
    started: list[Child] = []
    stopping = False

    def stop_all(signum: int | None = None, frame: FrameType | None = None) -> None:
        nonlocal stopping
        del frame
        if stopping:
            return
        stopping = True
        if signum is not None:
            click.echo("\nStopping…")
        for child in reversed(started):
            child.stop()
        plan.redis.stop()
        if signum is not None:
            click.echo("Stopped.")
        sys.exit(0)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    try:
        click.echo(f"  {'embedded Redis':<44}", nl=False)
        plan.redis.start()
        click.echo(click.style("ready", fg="green") + f" ({plan.redis.url})")
        for step in plan.prepare_steps:
            click.echo(f"  {step.label:<44}", nl=False)
            begun = time.monotonic()
            step.run()
            click.echo(click.style("done", fg="green") + f" ({time.monotonic() - begun:.1f}s)")
        for child, label, timeout in plan.children:
            started.append(child)
            _start(child, label=label, timeout=timeout)
    except StartupFailed as exc:
        click.echo(click.style("failed", fg="red"))
        click.echo(str(exc), err=True)
        stop_all()
        sys.exit(1)

    click.echo("")
    click.echo(click.style("sn19 dev is running.", bold=True))
    click.echo(f"  Base URL   {plan.base_url}/v1")
    click.echo(f"  API key    {plan.api_key}")
    email, password = plan.operator
    click.echo(f"  Dashboard  {plan.base_url}/dashboard  (sign in: {email} / {password})")
    click.echo(f"  Data dir   {plan.data_dir}  (logs in {plan.data_dir / 'logs'})")
    click.echo("")
    click.echo("  Try it:")
    click.echo(f"    curl {plan.base_url}/v1/chat/completions \\")
    click.echo(
        f'      -H "Authorization: Bearer {plan.api_key}" -H "Content-Type: application/json" \\'
    )
    click.echo(
        f'      -d \'{{"model": "{plan.chat_model}", '
        '"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 32}\''
    )
    click.echo("")
    click.echo("  Press Ctrl-C to stop.")
    while True:
        time.sleep(1.0)
        for child in started:
            if not child.alive:
                click.echo(click.style(f"{child.name} exited unexpectedly:", fg="red"), err=True)
                click.echo(child.tail(), err=True)
                stop_all()
                sys.exit(1)


@click.command()
@click.option("--port", default=8080, show_default=True, help="Gateway port.")
@click.option("--miners", "miner_count", default=3, show_default=True, type=click.IntRange(1, 32))
@click.option(
    "--api-key",
    default=None,
    help="Use this API key (an sk-sn19- key, e.g. from an earlier run) instead of a new one.",
)
@click.option(
    "--credits",
    default=1_000,
    show_default=True,
    type=click.IntRange(0),
    help="Credits the dev account is topped up to.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".sn19"),
    show_default=True,
    help="Wallets, the local network file, the database, logs.",
)
@click.option(
    "--miner-port",
    default=8191,
    show_default=True,
    help="First miner's port (8091, sn19 miner's default, stays free for a miner of your own).",
)
@click.option(
    "--period", "period_s", default=60.0, show_default=True, help="Scoring period in seconds."
)
@click.option(
    "--full-synthetic",
    is_flag=True,
    help="Send the production rate of synthetic traffic (by default a small share of it, "
    "enough to score every miner each period).",
)
def command(
    port: int,
    miner_count: int,
    api_key: str | None,
    credits: int,
    data_dir: Path,
    miner_port: int,
    period_s: float,
    full_synthetic: bool,
) -> None:
    """Run the whole validator plus local miners on the dev catalog (CPU models)."""
    from billing.keys.store import generate_secret, is_well_formed

    if api_key is not None and not is_well_formed(api_key):
        raise click.BadParameter(
            "not an sn19 API key: keys are 'sk-sn19-' + 32 letters/digits + a 6-character "
            "checksum (46 characters), as printed by an earlier `sn19 dev` or `sn19 keys create`."
            " Omit --api-key to get a new one.",
            param_hint="--api-key",
        )
    ports = [port, *range(miner_port, miner_port + miner_count)]
    busy = [p for p in ports if not _port_free(p)]
    if busy:
        raise click.UsageError(
            f"port(s) {', '.join(map(str, busy))} are in use; "
            "choose others with --port / --miner-port"
        )
    click.echo(click.style("sn19 dev", bold=True) + f": {miner_count} miner(s), data in {data_dir}")
    plan = build_plan(
        data_dir=data_dir.resolve(),
        port=port,
        miner_count=miner_count,
        miner_port=miner_port,
        api_key=api_key or generate_secret(),
        period_s=period_s,
        credits=credits,
        synthetic_scale=1.0 if full_synthetic else DEV_SYNTHETIC_SCALE,
    )
    _run(plan)
