"""The generated parts of docs/ are current: the configuration reference (from the settings
classes) and the module map in docs/architecture.md (from the modules' docstrings). Each test
runs the generator's ``--check`` in a child process, exactly as a developer would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("script", ["gen_config_docs.py", "gen_module_map.py"])
def test_generated_docs_are_current(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
