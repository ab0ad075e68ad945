"""Playwright on Debian's Chromium (``apt-get install chromium``): never a downloaded browser.
Screenshots go to ``artifacts/screenshots/`` (git-ignored); ``SN19_DOC_SCREENSHOTS=1`` also
copies the documented ones to ``docs/img/`` and records, in ``docs/img/manifest.json``, the
fingerprint of the dashboard's presentation sources (templates, stylesheet, script, charts) they
were taken with. ``tests/unit/docs/test_screenshots_current.py`` fails when those sources
changed since: regenerate with ``SN19_DOC_SCREENSHOTS=1 .venv/bin/pytest -m browser
tests/integration/web``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
DOC_IMAGES = ROOT / "docs" / "img"
MANIFEST = DOC_IMAGES / "manifest.json"
# What a documented screenshot shows depends on these (the data comes from the tests).
PRESENTATION = ("web/templates", "web/static", "web/charts.py", "web/render.py")


def presentation_fingerprint() -> str:
    """sha256 over the dashboard's presentation sources, file by file in a fixed order."""
    digest = hashlib.sha256()
    for entry in PRESENTATION:
        path = ROOT / entry
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.suffix in (".pyc",) or "__pycache__" in file.parts:
                continue
            digest.update(file.relative_to(ROOT).as_posix().encode() + b"\0")
            digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def _record(name: str) -> None:
    entries = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    entries[name] = presentation_fingerprint()
    MANIFEST.write_text(json.dumps(dict(sorted(entries.items())), indent=2) + "\n")


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: Any, name: str, *, document: bool = False) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=False)
    if document and os.environ.get("SN19_DOC_SCREENSHOTS") == "1":
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        _small_copy(path, DOC_IMAGES / path.name)
        _record(path.name)
    return path


def _small_copy(source: Path, target: Path) -> None:
    """A palette PNG (a flat UI needs few colours): about a third of the size."""
    try:
        from PIL import Image
    except ImportError:
        shutil.copyfile(source, target)
        return
    with Image.open(source) as image:
        image.convert("RGB").quantize(colors=96, dither=Image.Dither.NONE).save(
            target, optimize=True
        )
