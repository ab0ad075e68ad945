"""Write docs/configuration.md from the settings Structs (their fields, defaults and the comment
lines above each field), so the configuration reference cannot drift from the code.

    .venv/bin/python scripts/gen_config_docs.py          # rewrite the file
    .venv/bin/python scripts/gen_config_docs.py --check  # exit 1 if it is out of date (tests)
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.settings import Settings  # noqa: E402
from miner_server.settings import MinerSettings  # noqa: E402
from protocol.config import dump_settings  # noqa: E402

FIELD = re.compile(r"^\s+(\w+): .+?(?: = .+)?$")

HEADER = """# Configuration

Generated from the settings classes by `scripts/gen_config_docs.py` (a test checks it is current).

Every process reads its settings once at start, from (later wins): the defaults below, a TOML
file (`--config FILE`, or `SN19_CONFIG` / `SN19_MINER_CONFIG`), environment variables, and
command-line flags. Environment names join the prefix, the section and the field with `__`
after the section: `SN19_GATEWAY__PORT=8080` sets `[gateway] port`; top-level fields take a
single underscore: `SN19_CATALOG=production`. Lists in the environment are comma-separated.
Secrets are never printed (`sn19 config show` masks them).
"""


def field_comments(cls: type[Any]) -> dict[str, str]:
    comments: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("# ").rstrip())
            continue
        match = FIELD.match(line)
        if match and not stripped.startswith(("def ", "@", "return")):
            comments[match.group(1)] = " ".join(pending)
        pending = []
    return comments


def render_struct(
    cls: type[Any], values: dict[str, Any], prefix: str, section: str, out: list[str]
) -> None:
    comments = field_comments(cls)
    nested: list[tuple[str, type[Any]]] = []
    rows: list[str] = []
    hints = msgspec.structs.fields(cls)
    for info in hints:
        value = values.get(info.name)
        tp = info.type
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            nested.append((info.name, tp))
            continue
        env = f"{prefix}_{(section + '__') if section else ''}{info.name}".upper()
        shown = msgspec.json.encode(value).decode()
        rows.append(f"| `{info.name}` | `{shown}` | `{env}` | {comments.get(info.name, '')} |")
    title = f"[{section}]" if section else "top level"
    out.append(f"\n### {title}\n")
    out.append("| field | default | environment | meaning |")
    out.append("|---|---|---|---|")
    out.extend(rows)
    for name, tp in nested:
        render_struct(tp, values.get(name, {}), prefix, name, out)


def render() -> str:
    out = [HEADER]
    out.append("\n## Validator processes (`sn19 gateway`, `scoring`, `checker`, `dev`)\n")
    out.append("Prefix `SN19`. File: `--config` or `SN19_CONFIG`.")
    render_struct(Settings, dump_settings(Settings()), "SN19", "", out)
    out.append("\n## Miner (`sn19 miner`)\n")
    out.append("Prefix `SN19_MINER`. File: `--config` or `SN19_MINER_CONFIG`.")
    render_struct(MinerSettings, dump_settings(MinerSettings()), "SN19_MINER", "", out)
    return "\n".join(out) + "\n"


def main() -> int:
    target = ROOT / "docs" / "configuration.md"
    text = render()
    if "--check" in sys.argv:
        current = target.read_text("utf-8") if target.exists() else ""
        if current != text:
            print("docs/configuration.md is out of date: run scripts/gen_config_docs.py")
            return 1
        return 0
    target.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
