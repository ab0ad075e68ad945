"""Grammars for constrained answers (SPEC §7): a ``Constraint`` becomes an xgrammar grammar, and
token masks that a miner decodes under and the checker replays.

xgrammar is vLLM's default structured-output backend; both sides compile the same grammar text
for the same tokenizer, so they compute identical masks. The grammar of a constraint:

- ``schema``: JSON valid under the schema, in compact layout (``", "`` and ``": "``, no other
  whitespace), strict (no properties or items the schema does not name);
- ``tools``: exactly one call to one of the tools, as the task's format writes it, its
  arguments JSON valid under that tool's ``parameters``:
  ``hermes``: ``<tool_call>{"name": "NAME", "arguments": ARGS}</tool_call>``;
  ``llama3_json``: ``{"name": "NAME", "parameters": ARGS}``.

After the grammar is complete only a stop token is allowed, so an honest answer ends there.
xgrammar 0.2.9's JSON strings let raw control characters through where a schema limits a
string's length, and UTF-16 surrogates everywhere (neither is valid JSON text); the grammar text
is corrected (``_strict_strings``) before anything is compiled, on both sides alike.
``grammar_text`` is the grammar as EBNF text (what a vLLM server is given to build the very same
grammar); ``Grammars`` compiles and caches grammars for one tokenizer and hands out a
``Matcher`` per generated choice, and ``replay`` walks a delivered choice through the grammar
for the checker: the token masks of every position at once (``Replay``), and where the choice
first left the grammar. xgrammar (and torch) are imported on first use.
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from inference.base import Constraint

CACHE_SIZE = 256


def _literal(text: str) -> str:
    return json.dumps(text)  # an EBNF string literal: same escapes as JSON


# xgrammar's character classes for JSON strings, and the JSON-correct ones: no control
# characters, and no UTF-16 surrogates (not valid in UTF-8 text).
_CHAR_CLASSES = (
    ('[^\\"\\\\\\r\\n]', '[^\\"\\\\\\0-\\x1f\\ud800-\\udfff]'),
    ('[^\\0-\\x1f\\"\\\\\\r\\n]', '[^\\0-\\x1f\\"\\\\\\r\\n\\ud800-\\udfff]'),
)


def _strict_strings(grammar: Any) -> Any:
    import xgrammar as xgr

    text = fixed = str(grammar)
    for loose, strict in _CHAR_CLASSES:
        fixed = fixed.replace(loose, strict)
    return grammar if fixed == text else xgr.Grammar.from_ebnf(fixed)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _grammar(constraint: Constraint) -> Any:
    return _strict_strings(_composed(constraint))


def _composed(constraint: Constraint) -> Any:
    import xgrammar as xgr

    def schema(text: str) -> Any:
        return xgr.Grammar.from_json_schema(text, any_whitespace=False, strict_mode=True)

    if constraint.grammar is not None:
        return xgr.Grammar.from_ebnf(constraint.grammar)
    if constraint.schema is not None:
        return schema(constraint.schema)
    if not constraint.tools:
        raise ValueError("a constraint needs a schema or tools")
    calls = []
    for name, parameters in constraint.tools:
        if constraint.tool_format == "hermes":
            head = '<tool_call>{"name": ' + json.dumps(name) + ', "arguments": '
            tail = "}</tool_call>"
        else:
            head = '{"name": ' + json.dumps(name) + ', "parameters": '
            tail = "}"
        calls.append(
            xgr.Grammar.concat(
                xgr.Grammar.from_ebnf(f"root ::= {_literal(head)}"),
                schema(parameters),
                xgr.Grammar.from_ebnf(f"root ::= {_literal(tail)}"),
            )
        )
    return calls[0] if len(calls) == 1 else xgr.Grammar.union(*calls)


def grammar_text(constraint: Constraint) -> str:
    """The constraint's grammar as EBNF text."""
    return str(_grammar(constraint))


class Matcher:
    """One choice's walk through a grammar: ``mask`` the next token's logits, ``accept`` the
    token that was chosen (False: the grammar forbids it), ``done`` once complete."""

    def __init__(self, compiled: Any, vocab_size: int) -> None:
        import xgrammar as xgr

        self._xgr = xgr
        self._matcher = xgr.GrammarMatcher(compiled)
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self.vocab_size = vocab_size

    def mask(self, logits: Any) -> None:
        """Set the logits of forbidden tokens to -inf, in place (1-d or ``[1, vocab]``)."""
        self._matcher.fill_next_token_bitmask(self._bitmask)
        view = logits if logits.dim() > 1 else logits.unsqueeze(0)
        self._xgr.apply_token_bitmask_inplace(view, self._bitmask.to(logits.device))

    def allowed(self) -> Any:
        """The next position's allowed tokens as a bool tensor of ``vocab_size``."""
        import torch

        self._matcher.fill_next_token_bitmask(self._bitmask)
        logits = torch.zeros((1, self.vocab_size))
        self._xgr.apply_token_bitmask_inplace(logits, self._bitmask)
        return torch.isfinite(logits[0])

    def accept(self, token_id: int) -> bool:
        return bool(self._matcher.accept_token(token_id))

    @property
    def done(self) -> bool:
        return bool(self._matcher.is_terminated())


class Replay:
    """A delivered choice walked through a grammar: ``bitmask`` holds the allowed tokens of
    each position up to and including the first one the grammar forbids (``forbidden``; None
    when every token was allowed), ``done`` whether the grammar was complete after the last
    token. ``apply`` masks a ``[positions, vocab]`` float tensor of those positions in place."""

    def __init__(self, bitmask: Any, forbidden: int | None, done: bool, vocab_size: int) -> None:
        self.bitmask = bitmask
        self.forbidden = forbidden
        self.done = done
        self.vocab_size = vocab_size

    def apply(self, scores: Any) -> None:
        import xgrammar as xgr

        rows = int(scores.shape[0])
        xgr.apply_token_bitmask_inplace(
            scores, self.bitmask[:rows].to(scores.device), vocab_size=self.vocab_size
        )


class Grammars:
    """Compiled grammars for one tokenizer (``stop_ids``: the model's end tokens)."""

    def __init__(self, tokenizer: Any, *, vocab_size: int, stop_ids: Iterable[int]) -> None:
        import xgrammar as xgr

        self.vocab_size = vocab_size
        self._info = xgr.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=sorted(stop_ids)
        )
        self._compiler = xgr.GrammarCompiler(self._info, max_threads=1, cache_enabled=False)
        self._compiled: OrderedDict[Constraint, Any] = OrderedDict()

    def compiled(self, constraint: Constraint) -> Any:
        found = self._compiled.get(constraint)
        if found is None:
            found = self._compiled[constraint] = self._compiler.compile_grammar(
                _grammar(constraint)
            )
            if len(self._compiled) > CACHE_SIZE:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(constraint)
        return found

    def matcher(self, constraint: Constraint) -> Matcher:
        return Matcher(self.compiled(constraint), self.vocab_size)

    def replay(self, constraint: Constraint, token_ids: list[int]) -> Replay:
        """Walk ``token_ids`` through the constraint's grammar, as the miner's ``Matcher`` did
        while generating them, keeping every position's token mask."""
        import xgrammar as xgr

        matcher = xgr.GrammarMatcher(self.compiled(constraint))
        bitmask = xgr.allocate_token_bitmask(max(1, len(token_ids)), self.vocab_size)
        for position, token in enumerate(token_ids):
            matcher.fill_next_token_bitmask(bitmask, position)
            word = int(bitmask[position, token // 32])
            if not (word >> (token % 32)) & 1 or not matcher.accept_token(token):
                return Replay(bitmask, position, False, self.vocab_size)
        return Replay(bitmask, None, bool(matcher.is_terminated()), self.vocab_size)
