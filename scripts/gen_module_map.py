"""Rewrite the module map in docs/architecture.md from the code: every module of every package,
with the first line of its docstring, between the ``<!-- module-map -->`` markers.

    .venv/bin/python scripts/gen_module_map.py          # rewrite
    .venv/bin/python scripts/gen_module_map.py --check  # exit 1 if out of date (tests)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "protocol",
    "core",
    "inference",
    "billing",
    "scoring",
    "checker",
    "gateway",
    "web",
    "miner_server",
    "sn19",
)
START = "<!-- module-map:start -->"
END = "<!-- module-map:end -->"


def summary(path: Path) -> str:
    try:
        tree = ast.parse(path.read_text("utf-8"))
    except SyntaxError:
        return ""
    doc = ast.get_docstring(tree) or ""
    first = doc.strip().split("\n\n", 1)[0].replace("\n", " ").strip()
    return first.replace("|", "\\|")


def render() -> str:
    lines = [START, ""]
    for package in PACKAGES:
        base = ROOT / package
        if not base.is_dir():
            continue
        lines.append(f"### `{package}/`\n")
        lines.append("| module | what |")
        lines.append("|---|---|")
        for path in sorted(base.rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            lines.append(f"| `{relative}` | {summary(path)} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def main() -> int:
    target = ROOT / "docs" / "architecture.md"
    text = target.read_text("utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    updated = head + render() + tail
    if "--check" in sys.argv:
        if updated != text:
            print("docs/architecture.md's module map is out of date: run scripts/gen_module_map.py")
            return 1
        return 0
    target.write_text(updated, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
