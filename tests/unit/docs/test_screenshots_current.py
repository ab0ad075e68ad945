"""The screenshots in README.md and docs/ are current: each one is produced by a browser test
(``screenshot(..., document=True)``) and was taken with the dashboard's presentation sources as
they are now (the fingerprint in docs/img/manifest.json). After changing a template, the
stylesheet or the charts, regenerate them:

    SN19_DOC_SCREENSHOTS=1 .venv/bin/pytest -m browser tests/integration/web
"""

from __future__ import annotations

import json
import re

from tests.support.browser import DOC_IMAGES, MANIFEST, ROOT, presentation_fingerprint

REGENERATE = "regenerate: SN19_DOC_SCREENSHOTS=1 .venv/bin/pytest -m browser tests/integration/web"


def _referenced() -> set[str]:
    names: set[str] = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        names |= set(re.findall(r"img/([\w.-]+\.png)", doc.read_text("utf-8")))
    return names


def test_every_documented_screenshot_is_made_by_a_browser_test_and_current() -> None:
    manifest = json.loads(MANIFEST.read_text())
    referenced = _referenced()
    assert referenced, "no screenshot referenced: the pattern is wrong"
    missing = sorted(name for name in referenced if not (DOC_IMAGES / name).exists())
    assert not missing, f"referenced but missing in docs/img: {missing}"
    unmade = sorted(name for name in referenced if name not in manifest)
    assert not unmade, f"no browser test makes {unmade}: add document=True where it is taken"
    current = presentation_fingerprint()
    stale = sorted(name for name in referenced if manifest[name] != current)
    assert not stale, f"{stale} show an older dashboard; {REGENERATE}"
    unused = sorted(p.name for p in DOC_IMAGES.glob("*.png") if p.name not in referenced)
    assert not unused, f"docs/img holds screenshots no doc shows: {unused}"
