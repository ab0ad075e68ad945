"""Tool calls as text: how a model writes them in its completion, read back deterministically.

Miners return tokens (and their text) only; the gateway reads tool calls out of that text with
the task's format (``TextSpec.tool_format``), so every tool call a customer gets is backed by
tokens the checker verifies. Two formats:

- ``hermes``: each call is a block ``<tool_call>{"name": NAME, "arguments": {...}}</tool_call>``
  (Hermes, Qwen; the dev chat model's template). Text outside the blocks is the message content.
- ``llama3_json``: the whole completion is the call, a JSON object ``{"name": NAME,
  "parameters": {...}}`` (Llama 3.1+'s JSON tool calling), possibly after ``<|python_tag|>``;
  several calls are separated by ``;``. A completion that does not start with ``{`` is content.

``split_calls`` reads a whole completion; ``CallSplitter`` reads it as it streams, passing
content through as soon as it cannot be part of a call and returning each call once it is
complete. A block that does not parse (bad JSON, no name) is content, as vLLM's parsers treat
it; when a call was required, the caller refuses such an answer.
"""

from __future__ import annotations

import json
from typing import Literal

import msgspec

ToolFormat = Literal["hermes", "llama3_json"]

HERMES_OPEN = "<tool_call>"
HERMES_CLOSE = "</tool_call>"
PYTHON_TAG = "<|python_tag|>"


class Call(msgspec.Struct, frozen=True):
    name: str
    # The arguments as JSON text (an object).
    arguments: str


def _call(value: object, arguments_key: str) -> Call | None:
    if not isinstance(value, dict):
        return None
    name = value.get("name")
    arguments = value.get(arguments_key, value.get("arguments", {}))
    if not isinstance(name, str) or not name or not isinstance(arguments, dict):
        return None
    return Call(name=name, arguments=json.dumps(arguments, ensure_ascii=False))


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _hermes(text: str) -> tuple[str, list[Call]]:
    content: list[str] = []
    calls: list[Call] = []
    rest = text
    while (start := rest.find(HERMES_OPEN)) >= 0:
        end = rest.find(HERMES_CLOSE, start)
        if end < 0:
            break
        call = _call(_json(rest[start + len(HERMES_OPEN) : end].strip()), "arguments")
        if call is None:  # a block that is not a call stays text (as it does when streamed)
            content.append(rest[: end + len(HERMES_CLOSE)])
        else:
            content.append(rest[:start])
            calls.append(call)
        rest = rest[end + len(HERMES_CLOSE) :]
    content.append(rest)
    return "".join(content).strip() if calls else text, calls


def _llama3(text: str) -> tuple[str, list[Call]]:
    body = text.strip()
    body = body.removeprefix(PYTHON_TAG).strip()
    if not body.startswith("{"):
        return text, []
    calls: list[Call] = []
    for part in body.split(";"):
        if not part.strip():
            continue
        call = _call(_json(part.strip()), "parameters")
        if call is None:
            return text, []
        calls.append(call)
    return "", calls


def split_calls(text: str, fmt: ToolFormat) -> tuple[str, list[Call]]:
    """(content, calls) of a whole completion; no calls: the text is all content."""
    return _hermes(text) if fmt == "hermes" else _llama3(text)


def render_call(call: Call, fmt: ToolFormat) -> str:
    """How the model writes ``call`` (for earlier turns rendered into a prompt)."""
    if fmt == "hermes":
        body = f'{{"name": {json.dumps(call.name)}, "arguments": {call.arguments}}}'
        return f"{HERMES_OPEN}{body}{HERMES_CLOSE}"
    return f'{{"name": {json.dumps(call.name)}, "parameters": {call.arguments}}}'


class CallSplitter:
    """``split_calls`` on a completion that arrives in pieces. ``feed`` returns the content that
    can be sent now and the calls completed by this piece; ``finish`` the rest."""

    def __init__(self, fmt: ToolFormat) -> None:
        self.fmt = fmt
        self._held = ""  # text not yet known to be content
        self._started = False  # llama3_json: the first non-space character was seen
        self._whole = fmt == "llama3_json"  # llama3_json: a call is the whole completion

    def feed(self, text: str) -> tuple[str, list[Call]]:
        self._held += text
        if self.fmt == "llama3_json":
            return self._feed_llama3()
        return self._feed_hermes()

    def _feed_llama3(self) -> tuple[str, list[Call]]:
        if not self._started:
            stripped = self._held.lstrip()
            if not stripped or (
                len(stripped) < len(PYTHON_TAG) and PYTHON_TAG.startswith(stripped)
            ):
                return "", []  # cannot tell yet
            self._started = True
            # A call is the whole completion: hold everything until the end.
            self._whole = stripped.startswith(("{", PYTHON_TAG))
        if self._whole:
            return "", []
        out, self._held = self._held, ""
        return out, []

    def _feed_hermes(self) -> tuple[str, list[Call]]:
        content: list[str] = []
        calls: list[Call] = []
        while True:
            start = self._held.find(HERMES_OPEN)
            if start < 0:
                # Send all but a tail that may still become "<tool_call>".
                keep = _partial_prefix(self._held, HERMES_OPEN)
                content.append(self._held[: len(self._held) - keep])
                self._held = self._held[len(self._held) - keep :]
                break
            end = self._held.find(HERMES_CLOSE, start)
            if end < 0:
                content.append(self._held[:start])
                self._held = self._held[start:]
                break
            block = self._held[start + len(HERMES_OPEN) : end]
            call = _call(_json(block.strip()), "arguments")
            content.append(self._held[:start])
            if call is None:
                content.append(self._held[start : end + len(HERMES_CLOSE)])
            else:
                calls.append(call)
            self._held = self._held[end + len(HERMES_CLOSE) :]
        return "".join(content), calls

    def finish(self) -> tuple[str, list[Call]]:
        held, self._held = self._held, ""
        if self.fmt == "llama3_json" and self._whole:
            return split_calls(held, self.fmt)
        return held, []


def _partial_prefix(text: str, tag: str) -> int:
    """The length of the longest tail of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
