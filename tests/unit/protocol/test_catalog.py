from __future__ import annotations

import pytest

from protocol.catalog import CatalogError, load_catalog, parse_size, resolve_catalog

GOOD = """
[[task]]
id = "chat-a"
kind = "chat"
engine = { type = "transformers", model = "builtin:tiny-llama" }
max_capacity = 1000
volume_per_request = 300
weight = 1
text = { context_length = 512, max_output_tokens = 256 }
"""


def test_shipped_catalogs_load_and_weights_sum_to_one() -> None:
    for name in ("dev", "production"):
        catalog = resolve_catalog(name)
        assert catalog.tasks
        assert sum(catalog.normalized_weights().values()) == pytest.approx(1.0)
        kinds = {task.kind for task in catalog.enabled()}
        assert kinds == {"chat", "image", "embedding"}


def test_units_follow_kind() -> None:
    catalog = resolve_catalog("dev")
    assert {t.kind: t.unit for t in catalog.tasks} == {
        "chat": "tokens",
        "image": "steps",
        "embedding": "tokens",
    }


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("max_capacity = 1000", "max_capacity = -1", "task 'chat-a': max_capacity"),
        ("context_length = 512", "context_length = 0", "task 'chat-a': text.context_length"),
        ('kind = "chat"', 'kind = "video"', "task 'chat-a': kind"),
        ('type = "transformers"', 'type = "onnx"', "task 'chat-a': engine.type"),
        ("weight = 1", "weight = 1\nbogus = 2", "bogus"),
        ("max_output_tokens = 256", "max_output_tokens = 1024", "text.max_output_tokens"),
        ("text = { context_length = 512, max_output_tokens = 256 }", "", "text: required"),
    ],
)
def test_error_message_names_field(old: str, new: str, needle: str) -> None:
    with pytest.raises(CatalogError, match=needle.replace("'", ".").replace("(", r"\(")):
        load_catalog(GOOD.replace(old, new), source="t.toml")


def test_duplicate_ids_and_image_sizes() -> None:
    with pytest.raises(CatalogError, match="duplicate"):
        load_catalog(GOOD + GOOD)
    image = """
[[task]]
id = "img"
kind = "image"
engine = { type = "diffusers", model = "builtin:tiny-sd" }
max_capacity = 800
volume_per_request = 10
weight = 1
image = { sizes = ["64x64"], default_size = "32x32", default_steps = 10, max_steps = 20 }
"""
    with pytest.raises(CatalogError, match="image.default_size"):
        load_catalog(image)
    with pytest.raises(CatalogError, match="image.sizes"):
        load_catalog(image.replace('["64x64"]', '["big"]'))


def test_disabled_tasks_are_invisible() -> None:
    catalog = load_catalog(GOOD.replace("weight = 1", "weight = 1\nenabled = false"))
    assert catalog.get("chat-a") is None
    assert catalog.enabled() == ()


def test_parse_size() -> None:
    assert parse_size("64x32") == (64, 32)
    with pytest.raises(ValueError):
        parse_size("64")


def test_not_toml_and_missing_file() -> None:
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog("[[task]\n", source="x")
    with pytest.raises(CatalogError, match="cannot read catalog"):
        resolve_catalog("/nonexistent/catalog.toml")
