"""What a person sees, checked in Chromium: axe-core's accessibility rules, horizontal overflow,
and that every navigation target can be reached.

axe-core is the npm package pinned in package.json (``npm ci`` installs it; CI does): its
``axe.min.js`` is read from ``node_modules/`` and evaluated in the page through the DevTools
protocol (the dashboard's Content-Security-Policy allows no inline script, and nothing is
downloaded at test time)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


@cache
def _axe_source() -> str:
    if not AXE.exists():
        pytest.fail(
            f"{AXE} is missing: run `npm ci` in the repository (package.json pins axe-core)"
        )
    return AXE.read_text("utf-8")


async def axe_violations(page: Any) -> list[str]:
    """The page's serious and critical axe-core violations, one line each (empty: none)."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(_axe_source())
    result = await page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations; }"
    )
    lines = []
    for violation in result:
        if violation.get("impact") not in BLOCKING:
            continue
        targets = [json.dumps(node.get("target")) for node in violation.get("nodes", [])[:4]]
        lines.append(
            f"{violation['impact']} {violation['id']}: {violation['help']} "
            f"({len(violation.get('nodes', []))} nodes, e.g. {', '.join(targets)})"
        )
    return lines


async def overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the window (0: no horizontal scrolling)."""
    width = await page.evaluate("document.documentElement.scrollWidth")
    inner = await page.evaluate("window.innerWidth")
    return max(int(width) - int(inner), 0)


async def unreachable_nav(page: Any) -> list[str]:
    """Navigation links a person cannot see or tap at this width (opening the Menu first
    when there is one)."""
    links = page.locator("#main-nav a")
    count = await links.count()
    if not count:
        return []
    button = page.locator("#menu-button")
    if await button.is_visible():
        await button.click()
        assert await button.get_attribute("aria-expanded") == "true"
    viewport = page.viewport_size or {"width": 10_000, "height": 10_000}
    missing = []
    for index in range(count):
        link = links.nth(index)
        box = await link.bounding_box()
        visible = await link.is_visible()
        if (
            not visible
            or box is None
            or box["x"] < 0
            or box["x"] + box["width"] > viewport["width"] + 1
        ):
            missing.append(await link.inner_text())
    if await button.is_visible():
        await button.click()
    return missing
