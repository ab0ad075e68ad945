"""Synthetic image and embedding requests.

Images: a subject from the corpus with a style and sometimes details and a negative prompt;
a size from the task's sizes (or none: the task's default), steps near the task's default
within its bounds (or none), mostly one image. Embeddings: one text or a small batch, in the
registers customers send (search queries, short documents, notes), sometimes base64-encoded.
"""

from __future__ import annotations

import random

from protocol.catalog import Task
from protocol.openai.embeddings import EmbeddingRequest
from protocol.openai.images import ImageGenerationRequest
from scoring.synthetic.corpus import Corpus, fill


def image_prompt(rng: random.Random, corpus: Corpus) -> str:
    subject = rng.choice(corpus.image_subjects)
    point = rng.random()
    if point < 0.2:
        return subject[:1].upper() + subject[1:]
    parts = [subject, rng.choice(corpus.image_styles)]
    if point > 0.55:
        parts.append(rng.choice(corpus.image_details))
    separator = ", " if rng.random() < 0.8 else ". "
    return separator.join(parts)


def image_request(
    task: Task, rng: random.Random, corpus: Corpus, seed: int
) -> ImageGenerationRequest:
    spec = task.image
    assert spec is not None, "image tasks have an image section (checked by the catalog)"
    steps: int | None = None
    if rng.random() < 0.4:
        low = max(1, spec.default_steps - 4)
        steps = rng.randint(low, max(low, min(spec.max_steps, spec.default_steps + 4)))
    return ImageGenerationRequest(
        prompt=image_prompt(rng, corpus),
        model=task.id,
        n=2 if spec.max_n >= 2 and rng.random() < 0.08 else None,
        size=rng.choice(spec.sizes) if rng.random() < 0.7 else None,
        response_format="b64_json" if rng.random() < 0.5 else None,
        seed=seed,
        steps=steps,
        negative_prompt=rng.choice(corpus.negative_prompts) if rng.random() < 0.3 else None,
        guidance_scale=round(rng.uniform(1.0, 9.0), 1) if rng.random() < 0.15 else None,
    )


def embedding_text(rng: random.Random, corpus: Corpus) -> str:
    return fill(rng.choice(corpus.embedding_templates), topic=rng.choice(corpus.topics))


def embedding_request(task: Task, rng: random.Random, corpus: Corpus) -> EmbeddingRequest:
    spec = task.embedding
    assert spec is not None, "embedding tasks have an embedding section (checked by the catalog)"
    batch = 1 if rng.random() < 0.6 else rng.randint(2, max(2, min(16, spec.max_inputs)))
    texts: list[str | int | list[int]] = [embedding_text(rng, corpus) for _ in range(batch)]
    single = batch == 1 and rng.random() < 0.7
    return EmbeddingRequest(
        model=task.id,
        input=embedding_text(rng, corpus) if single else texts,
        encoding_format="base64" if rng.random() < 0.3 else None,
    )
