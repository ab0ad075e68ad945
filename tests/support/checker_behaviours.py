"""The behaviours of the checker suite (``tests.support.checker_suite``): honest miners and
cheats, each with its engine and its requests."""

from __future__ import annotations

from typing import Any

from inference.diffusers_image import DiffusersImageEngine
from inference.sentence_embed import SentenceEmbeddingEngine
from inference.transformers_text import TransformersTextEngine
from tests.support import cheats, cheats_media
from tests.support.checker_workloads import (
    CHAT,
    EMBED,
    IMAGE,
    Behaviour,
    Call,
    Constrained,
    chat,
    completion,
    constrained,
    embedding,
    image,
    mixed,
)


def _tiny_llama() -> TransformersTextEngine:
    return TransformersTextEngine("builtin:tiny-llama")


def _padded(engine: Any, call: Call) -> bool:
    return engine is not None and call.seed in engine.padded


def text_behaviours(jobs: int = 30) -> list[Behaviour]:
    honest: list[Behaviour] = []
    for temperature in (0.0, 0.7, 1.0, 1.5):
        for top_p in (None, 0.9):
            label = f"T={temperature:g}" + ("" if top_p is None else f", top_p={top_p:g}")
            honest.append(
                Behaviour(
                    f"text honest {label}",
                    True,
                    CHAT,
                    lambda i, t=temperature, p=top_p: chat(
                        i, temperature=t, top_p=p, seed_base=int(1000 + t * 100)
                    ),
                    _tiny_llama,
                    jobs=jobs,
                    note="chat, 16-512 tokens, streamed or not",
                )
            )
    honest += [
        Behaviour(
            "text honest n>1",
            True,
            CHAT,
            lambda i: chat(
                i,
                temperature=(0.7, 1.0, 1.5, 0.0)[i % 4],
                n=(2, 3, 4)[i % 3],
                max_tokens=(16, 64, 128, 256)[i % 4],
                seed_base=7000,
            ),
            _tiny_llama,
            jobs=jobs,
            note="n = 2-4",
        ),
        Behaviour(
            "text honest completions",
            True,
            CHAT,
            lambda i: completion(
                i, temperature=(0.0, 0.7, 1.0, 1.5)[i % 4], top_p=(None, 0.9)[(i // 4) % 2]
            ),
            _tiny_llama,
            jobs=jobs,
            note="/v1/completions, text and token-id prompts",
        ),
        Behaviour(
            "text honest batched",
            True,
            CHAT,
            lambda i: mixed(i, seed_base=8000),
            cheats.BatchedEngine,
            jobs=jobs,
            note="own sampler, batch of 4 rows",
        ),
        Behaviour(
            "text honest 2 threads",
            True,
            CHAT,
            lambda i: mixed(i, seed_base=9000),
            None,
            jobs=jobs,
            note="`sn19 miner` process, torch on 2 threads",
        ),
    ]
    cheat = [
        Behaviour(
            "text smaller model",
            False,
            CHAT,
            lambda i: mixed(i, seed_base=11000),
            cheats.SmallerModelEngine,
            jobs=jobs,
            note="1-layer tiny Llama, other seed",
        ),
        Behaviour(
            "text random tokens",
            False,
            CHAT,
            lambda i: mixed(i, seed_base=12000),
            cheats.RandomTokensEngine,
            jobs=jobs,
            note="plausible logprobs",
        ),
        Behaviour(
            "text fabricated logprobs",
            False,
            CHAT,
            lambda i: mixed(i, seed_base=13000),
            cheats.FabricatedLogprobsEngine,
            jobs=jobs,
            note="right tokens",
        ),
        Behaviour(
            "text greedy when T=1 asked",
            False,
            CHAT,
            lambda i: chat(
                i,
                temperature=1.0,
                top_p=(None, 0.9)[i % 2],
                max_tokens=(128, 256, 512)[i % 3],
                seed_base=14000,
            ),
            cheats.GreedyEngine,
            jobs=jobs,
            note="128-512 tokens",
        ),
        Behaviour(
            "text sampling when T=0 asked",
            False,
            CHAT,
            # Long answers: a short one sampled at T=1 from the peaked dev model stays within
            # greedy_tolerance (bfloat16 rounding) of the argmax at every token.
            lambda i: chat(i, temperature=0.0, max_tokens=(128, 256, 512)[i % 3], seed_base=15000),
            cheats.SamplingEngine,
            jobs=jobs,
            note="samples at T=1, 128-512 tokens",
        ),
        Behaviour(
            "text padding (EOS avoided)",
            False,
            CHAT,
            lambda i: chat(
                i,
                temperature=(0.7, 1.0, 1.5)[i % 3],
                top_p=(None, 0.9)[i % 2],
                max_tokens=(256, 384)[i % 2],
                seed_base=16000,
            ),
            cheats.PaddingEngine,
            jobs=jobs,
            counts=_padded,
            max_calls=jobs * 4,
            note="jobs where the model had stopped",
        ),
        Behaviour(
            "text truncated",
            False,
            CHAT,
            lambda i: mixed(i, seed_base=17000),
            cheats.TruncatingEngine,
            jobs=jobs,
            note="'length' or 'stop' claimed",
        ),
        Behaviour(
            "text replayed answer",
            False,
            CHAT,
            lambda i: mixed(i, seed_base=18000),
            cheats.ReplayEngine,
            jobs=jobs,
            note="answer to another prompt",
        ),
    ]
    return honest + cheat


def image_behaviours(jobs: int = 30) -> list[Behaviour]:
    def real() -> DiffusersImageEngine:
        return DiffusersImageEngine("builtin:tiny-sd")

    return [
        Behaviour(
            "image honest",
            True,
            IMAGE,
            lambda i: image(i, edit_every=5),
            real,
            jobs=jobs,
            note="64x64, 3-10 steps, n 1-2, png/jpeg/webp, edits",
        ),
        Behaviour(
            "image honest batched",
            True,
            IMAGE,
            lambda i: image(i, n=(2, 3)[i % 2]),
            cheats_media.BatchedImageEngine,
            jobs=jobs,
            note="one batched call, n = 2-3",
        ),
        Behaviour(
            "image honest 2 threads",
            True,
            IMAGE,
            lambda i: image(i + 100),
            None,
            jobs=jobs,
            note="`sn19 miner` process, torch on 2 threads",
        ),
        Behaviour(
            "image other seed",
            False,
            IMAGE,
            lambda i: image(i + 200),
            cheats_media.OtherSeedImageEngine,
            jobs=jobs,
        ),
        Behaviour(
            "image other prompt",
            False,
            IMAGE,
            lambda i: image(i + 300),
            cheats_media.OtherPromptImageEngine,
            jobs=jobs,
        ),
        Behaviour(
            "image resized",
            False,
            IMAGE,
            lambda i: image(i + 400),
            cheats_media.ResizedImageEngine,
            jobs=jobs,
            note="half-size generation or down/up-scaled",
        ),
        Behaviour(
            "image re-compressed",
            False,
            IMAGE,
            lambda i: image(i + 500),
            cheats_media.RecompressedImageEngine,
            jobs=jobs,
            note="lossy JPEG",
        ),
    ]


def embedding_behaviours(jobs: int = 30) -> list[Behaviour]:
    def real() -> SentenceEmbeddingEngine:
        return SentenceEmbeddingEngine(cheats_media.MINILM)

    def unbatched() -> SentenceEmbeddingEngine:
        return SentenceEmbeddingEngine(cheats_media.MINILM, batch_size=1)

    return [
        Behaviour("embedding honest", True, EMBED, embedding, real, jobs=jobs),
        Behaviour(
            "embedding honest batch size 1",
            True,
            EMBED,
            lambda i: embedding(i + 50),
            unbatched,
            jobs=jobs,
        ),
        Behaviour(
            "embedding honest 2 threads",
            True,
            EMBED,
            lambda i: embedding(i + 100),
            None,
            jobs=jobs,
            note="`sn19 miner` process",
        ),
        Behaviour(
            "embedding smaller model",
            False,
            EMBED,
            lambda i: embedding(i + 150),
            cheats_media.SmallerEmbeddingEngine,
            jobs=jobs,
            note="first 3 of 6 layers",
        ),
        Behaviour(
            "embedding perturbed",
            False,
            EMBED,
            lambda i: embedding(i + 200),
            cheats_media.PerturbedEmbeddingEngine,
            jobs=jobs,
            note="cosine ≈ 0.995",
        ),
    ]


def _cycle(kinds: tuple[Constrained, ...], seed_base: int) -> Any:
    return lambda i: constrained(i, kinds[i % len(kinds)], seed_base=seed_base)


def constrained_behaviours(jobs: int = 30) -> list[Behaviour]:
    """Constrained chat requests (SPEC §7): the dev model's engine answering under the grammar
    at temperature 0, 0.7 and 1.0 in turn, streamed or not, and three cheats (mean ≤ 0.1)."""
    kinds: tuple[tuple[Constrained, str], ...] = (
        ("json_object", "response_format json_object"),
        ("json_schema", "strict json_schema (string, boolean, enum)"),
        ("named_tool", "tool_choice a named function"),
        ("required_tool", "tool_choice required, 2 tools"),
        ("auto_tool", "tools, tool_choice auto (unconstrained)"),
    )
    honest = [
        Behaviour(
            f"constrained honest {kind.replace('_', ' ')}",
            True,
            CHAT,
            _cycle((kind,), 20_000 + 1000 * position),
            _tiny_llama,
            jobs=jobs,
            note=f"{note}; T = 0, 0.7, 1.0",
        )
        for position, (kind, note) in enumerate(kinds)
    ]
    cheat = [
        Behaviour(
            "constrained grammar ignored",
            False,
            CHAT,
            _cycle(("json_object", "json_schema", "named_tool", "required_tool"), 26_000),
            cheats.GrammarIgnoringEngine,
            jobs=jobs,
            cheat_mean=0.1,
            note="decodes without the mask, to max_tokens",
        ),
        Behaviour(
            "constrained fabricated tool call",
            False,
            CHAT,
            _cycle(("named_tool", "required_tool"), 27_000),
            cheats.FabricatedToolCallEngine,
            jobs=jobs,
            cheat_mean=0.1,
            note="well-formed call, fixed schema-valid arguments",
        ),
        Behaviour(
            "constrained schema violated",
            False,
            CHAT,
            _cycle(("json_schema", "named_tool", "required_tool"), 28_000),
            cheats.SchemaViolatingEngine,
            jobs=jobs,
            cheat_mean=0.1,
            note="any JSON object where a schema was asked, padded to max_tokens",
        ),
    ]
    return honest + cheat


def all_behaviours(jobs: int = 30) -> list[Behaviour]:
    return (
        text_behaviours(jobs)
        + constrained_behaviours(jobs)
        + image_behaviours(jobs)
        + embedding_behaviours(jobs)
    )
