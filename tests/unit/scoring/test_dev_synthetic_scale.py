"""`sn19 dev` sends a small share of the production synthetic traffic unless asked for the
full rate: the scoring settings it writes, and what they make of each dev task's schedule."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from core.settings import Settings
from protocol.catalog import resolve_catalog
from scoring.formulas import QUOTA_MULTIPLIERS, quota_volume
from scoring.synthetic.plan import request_count
from sn19.commands.dev import command
from sn19.dev.plan import DEV_SYNTHETIC_SCALE, validator_config


def scale_written(tmp_path: Path, **options: float) -> float:
    text = validator_config(
        data_dir=tmp_path, port=8080, redis_url="redis://127.0.0.1:1/0", period_s=60.0, **options
    )
    config = tmp_path / "validator.toml"
    config.write_text(text, "utf-8")
    return Settings.from_env({}, config_file=str(config)).scoring.quota_scale


def test_dev_writes_the_small_share_by_default_and_full_on_request(tmp_path):
    assert scale_written(tmp_path) == DEV_SYNTHETIC_SCALE < 0.05
    assert scale_written(tmp_path, synthetic_scale=1.0) == 1.0
    help_text = CliRunner().invoke(command, ["--help"]).output
    assert "--full-synthetic" in help_text


def test_the_small_share_still_tests_every_contender_about_once_a_period():
    catalog = resolve_catalog("dev")
    usual = QUOTA_MULTIPLIERS[0][0]
    for task in catalog.enabled():
        quota = quota_volume(task.max_capacity, usual)
        full = request_count(quota, task.volume_per_request)
        small = request_count(quota * DEV_SYNTHETIC_SCALE, task.volume_per_request)
        assert small == 1, task.id
        assert full >= 3, task.id
