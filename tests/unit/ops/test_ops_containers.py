"""deploy/compose.yaml and the Containerfiles, checked without a container engine (none runs
where these tests run): every sn19 service runs a real ``sn19`` command line, its healthcheck
asks ``/healthz`` on the port its own settings configure (read by the real settings loader),
secrets come only from the environment, every required variable is in deploy/env.example,
every mounted file exists, and Caddy and Prometheus reach the ports the services listen on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

from core.settings import Settings
from sn19.cli import main as cli

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
SN19_IMAGE = "sn19-validator:"
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN", re.IGNORECASE)
# The port each process's liveness answers on, by its sn19 command.
HEALTH_PORT = {
    "gateway": lambda s: s.gateway.port,
    "scoring": lambda s: s.scoring.metrics_port,
    "checker": lambda s: s.checker.metrics_port,
}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def env_example() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    # Empty secrets in the example get a stand-in so the interpolation below can run.
    return {key: value or f"example-{key.lower()}" for key, value in pairs}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}``."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise AssertionError(f"{name} is required but not in deploy/env.example")
        return rest or ""

    return _VAR.sub(one, value)


def sn19_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if str(service.get("image", "")).startswith(SN19_IMAGE)
    }


def resolve(args: list[str]) -> click.Context:
    """Parse an ``sn19`` command line the way the CLI would (without running it)."""
    group: click.Command = cli
    ctx = cli.make_context("sn19", [], resilient_parsing=True)
    rest = list(args)
    while isinstance(group, click.Group):
        assert rest, f"{args}: names a group, not a command"
        found = group.get_command(ctx, rest[0])
        assert found is not None, f"{args}: {rest[0]!r} is not an sn19 subcommand"
        group, rest = found, rest[1:]
    return group.make_context(" ".join(args), rest)


def test_sn19_services_run_real_subcommands() -> None:
    services = sn19_services()
    assert {"gateway", "scoring", "checker", "migrate", "ledger-verify"} <= services.keys()
    for name, service in services.items():
        ctx = resolve(service["command"])
        assert ctx.command.name, name
    with pytest.raises(AssertionError):
        resolve(["no-such-command"])
    with pytest.raises(click.UsageError):
        resolve(["ledger", "verify", "--no-such-flag"])


def test_replicas_as_documented() -> None:
    services = compose()["services"]
    for name in ("gateway", "scoring", "checker"):
        assert services[name]["deploy"]["replicas"] == 2


def test_the_gateways_trust_only_the_proxy() -> None:
    services = compose()["services"]
    proxy = services["proxy"]["networks"]["sn19"]["ipv4_address"]
    env = {
        k: interpolate(str(v), env_example()) for k, v in services["gateway"]["environment"].items()
    }
    assert Settings.from_env(env).web.trusted_proxies == [proxy]


@pytest.mark.parametrize("name", sorted(HEALTH_PORT))
def test_healthchecks_ask_healthz_on_the_configured_port(name: str) -> None:
    service = sn19_services()[name]
    env = {k: interpolate(str(v), env_example()) for k, v in service["environment"].items()}
    settings = Settings.from_env(env)
    port = HEALTH_PORT[name](settings)
    assert port > 0
    test = service["healthcheck"]["test"]
    [url] = [u for part in test for u in re.findall(r"http://[^'\" ]+", part)]
    parts = urlsplit(url)
    assert (parts.hostname, parts.port, parts.path) == ("127.0.0.1", port, "/healthz")
    if name != "gateway":
        # The metrics exporter listens on every interface so Prometheus can reach it.
        assert getattr(settings, name).metrics_host == "0.0.0.0"  # noqa: S104


def test_the_images_healthcheck_asks_healthz() -> None:
    for file, port in (("Containerfile.validator", 8080), ("Containerfile.miner", 8091)):
        text = (DEPLOY / file).read_text()
        assert "HEALTHCHECK" in text and f"127.0.0.1:{port}/healthz" in text, file
    assert Settings().gateway.port == 8080
    from miner_server.settings import MinerSettings

    assert MinerSettings().port == 8091


def test_containerfiles_run_as_a_user_and_install_the_lock() -> None:
    for file in ("Containerfile.validator", "Containerfile.miner"):
        lines = [line.strip() for line in (DEPLOY / file).read_text().splitlines() if line.strip()]
        users = [line.split()[1] for line in lines if line.startswith("USER ")]
        assert users and users[-1] not in {"root", "0"}, file
        copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
        for sources in copies:
            for source in sources:
                assert (ROOT / source).exists(), f"{file}: COPY {source} does not exist"
        lock = [src for srcs in copies for src in srcs if src.startswith("requirements/")]
        assert lock == ["requirements/dev.txt"], file
        assert "--require-hashes" in (DEPLOY / file).read_text()
        entry = [line for line in lines if line.startswith("ENTRYPOINT")]
        assert entry == ['ENTRYPOINT ["sn19"]'], file
        # Every package pyproject installs is copied in.
        text = (ROOT / "pyproject.toml").read_text()
        packages = re.findall(r'"([a-z_]+)\*"', text.split("packages.find]", 1)[1].split("]")[0])
        copied = {src for srcs in copies for src in srcs}
        assert set(packages) <= copied, file


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [str(node)] if isinstance(node, str) else []


def test_no_secret_is_written_inline() -> None:
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if _SECRET_NAME.search(key):
                match = _VAR.fullmatch(str(value))
                assert match is not None, f"{name}.{key} is not taken from the environment"
                assert not match.group(3) or match.group(2) == "?", f"{name}.{key} has a default"
    for value in _strings(compose()):
        for url in re.findall(r"[a-z+]+://[^\s\"']+", value):
            password = urlsplit(url).password
            assert password is None or _VAR.fullmatch(password), f"inline password in {url}"


def test_every_required_variable_is_in_the_env_example() -> None:
    env = env_example()
    for value in _strings(compose()):
        interpolate(value, env)
    assert not (DEPLOY / ".env").exists() or ".env" in (ROOT / ".gitignore").read_text()


def test_mounted_files_exist() -> None:
    mounts = [
        volume.split(":")[0]
        for service in compose()["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    assert mounts
    for source in mounts:
        assert (DEPLOY / source).is_file(), source


def test_proxy_and_prometheus_reach_the_service_ports() -> None:
    caddyfile = (DEPLOY / "caddy" / "Caddyfile").read_text()
    assert re.search(r"name gateway\s+port 8080", caddyfile)
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    ports = {
        job["job_name"]: (job["dns_sd_configs"][0]["names"], job["dns_sd_configs"][0]["port"])
        for job in prometheus["scrape_configs"]
        if "dns_sd_configs" in job
    }
    assert ports == {
        "sn19-gateway": (["gateway"], 8080),
        "sn19-scoring": (["scoring"], 9102),
        "sn19-checker": (["checker"], 9101),
    }
    assert "/etc/prometheus/alerts.yml" in prometheus["rule_files"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_prometheus_config(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    config = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/alerts.yml", str(tmp_path / "alerts.yml"))
    )
    result = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy not installed")
def test_caddy_accepts_the_caddyfile() -> None:
    result = subprocess.run(
        ["caddy", "adapt", "--config", str(DEPLOY / "caddy" / "Caddyfile")],
        capture_output=True,
        text=True,
        check=False,
        env={"SN19_DOMAIN": "api.example.com", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
