"""`sn19 checker` is registered and documents its options."""

from __future__ import annotations

from click.testing import CliRunner

from sn19.cli import main


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(main, ["checker", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--config", "--consumer", "--concurrency", "--metrics-port"):
        assert option in result.output


def test_a_bad_setting_is_a_clean_error(tmp_path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[checker]\nno_such_field = 1\n", "utf-8")
    result = CliRunner().invoke(main, ["checker", "--config", str(config)])
    assert result.exit_code != 0 and "no_such_field" in result.output
