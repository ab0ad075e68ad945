"""The shipped prompt corpus (``scoring/synthetic/data/*.txt``), loaded once per process.

Each file holds one entry per line (``#`` lines are comments; ``\\n`` in a line is a newline).
Templates use ``{topic}``, ``{audience}`` and ``{n}``. Combined by the generators, the files
give hundreds of thousands of distinct chat and completion prompts, tens of thousands of image
prompts, and embedding inputs in several registers (queries, documents, notes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

FILES = (
    "topics",
    "chat_templates",
    "audiences",
    "styles",
    "personas",
    "questions",
    "followups",
    "assistant_openers",
    "completion_templates",
    "image_subjects",
    "image_styles",
    "image_details",
    "negative_prompts",
    "embedding_templates",
)


def parse_lines(text: str) -> tuple[str, ...]:
    entries = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            entries.append(line.replace("\\n", "\n"))
    return tuple(entries)


@dataclass(frozen=True, slots=True)
class Corpus:
    topics: tuple[str, ...]
    chat_templates: tuple[str, ...]
    audiences: tuple[str, ...]
    styles: tuple[str, ...]
    personas: tuple[str, ...]
    questions: tuple[str, ...]
    followups: tuple[str, ...]
    assistant_openers: tuple[str, ...]
    completion_templates: tuple[str, ...]
    image_subjects: tuple[str, ...]
    image_styles: tuple[str, ...]
    image_details: tuple[str, ...]
    negative_prompts: tuple[str, ...]
    embedding_templates: tuple[str, ...]


@cache
def load_corpus() -> Corpus:
    base = resources.files("scoring.synthetic.data")
    fields = {name: parse_lines(base.joinpath(f"{name}.txt").read_text("utf-8")) for name in FILES}
    empty = [name for name, entries in fields.items() if not entries]
    if empty:
        raise RuntimeError(f"synthetic corpus files are empty: {', '.join(empty)}")
    return Corpus(**fields)


def fill(template: str, *, topic: str, audience: str = "a beginner", n: int = 3) -> str:
    """Substitute the placeholders (plain replacement: braces elsewhere stay as they are)."""
    return template.replace("{topic}", topic).replace("{audience}", audience).replace("{n}", str(n))
