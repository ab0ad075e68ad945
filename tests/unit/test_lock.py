"""The pinned lock (requirements/dev.txt) agrees with pyproject.toml.

Every requirement pyproject.toml names, in the base install and in every extra, must be pinned in
the lock to a version its specifier admits; the lock must pin nothing that nothing asks for. When
this fails, refresh the lock with `scripts/lock` (see README.md) and commit it on its own.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "dev.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in LOCK.read_text().splitlines():
        if match := PIN.match(line):
            pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def _direct_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        texts.extend(extra)
    own = canonicalize_name(project["name"])
    return [r for r in map(Requirement, texts) if canonicalize_name(r.name) != own]


def test_every_requirement_of_pyproject_is_pinned_within_its_range() -> None:
    pins = _pins()
    problems = []
    for requirement in _direct_requirements():
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement} is not in the lock")
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems.append(f"{requirement} does not admit the locked {pinned}")
    assert not problems, "refresh the lock with scripts/lock:\n" + "\n".join(problems)


def test_the_lock_pins_hashes_and_nothing_unasked() -> None:
    text = LOCK.read_text()
    pins = _pins()
    assert len(pins) > 50
    # Each pin is followed by at least one hash: pip installs the lock in hash-checking mode.
    assert text.count("==") <= text.count("--hash=sha256:")
    # pip-compile's "# via" lines say who asked for each pin; a pin without one is stale.
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    orphans = [b.split("==")[0] for b in blocks if PIN.match(b) and "# via" not in b]
    assert not orphans, f"pins nothing asks for (refresh with scripts/lock): {orphans}"
