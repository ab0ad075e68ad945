"""Synthetic traffic that looks organic (SPEC §6): generators per task kind over a shipped
corpus, seeds from this validator's reserved range.

``SyntheticFactory.make(task)`` returns a ``SyntheticRequest``: the public API request (the same
``protocol.openai`` types a customer sends), the endpoint path, and the volume it stands for.
The synthetic sender dispatches it through the same code as organic requests.
"""

from __future__ import annotations

import random

import msgspec

from protocol.catalog import Task
from protocol.openai.chat import ChatCompletionRequest
from protocol.openai.completions import CompletionRequest
from protocol.openai.embeddings import EmbeddingRequest
from protocol.openai.images import ImageGenerationRequest
from scoring.synthetic.corpus import Corpus, load_corpus
from scoring.synthetic.media import embedding_request, image_request
from scoring.synthetic.seeds import SeedRange
from scoring.synthetic.text import chat_request, completion_request

__all__ = ["SeedRange", "SyntheticFactory", "SyntheticRequest"]

ApiRequest = ChatCompletionRequest | CompletionRequest | ImageGenerationRequest | EmbeddingRequest

# Share of a chat task's synthetic requests that use /v1/completions instead of chat.
COMPLETIONS_SHARE = 0.2


class SyntheticRequest(msgspec.Struct, frozen=True):
    task: str
    path: str
    request: ApiRequest
    # The volume (task units) this request stands for in the contender's test quota.
    volume: float

    def body(self) -> bytes:
        return msgspec.json.encode(self.request)


class SyntheticFactory:
    def __init__(
        self, seeds: SeedRange, *, rng: random.Random | None = None, corpus: Corpus | None = None
    ) -> None:
        self.seeds = seeds
        self.rng = rng or random.Random()
        self.corpus = corpus or load_corpus()

    def make(self, task: Task) -> SyntheticRequest:
        rng, corpus = self.rng, self.corpus
        request: ApiRequest
        if task.kind == "chat":
            if rng.random() < COMPLETIONS_SHARE:
                request = completion_request(task, rng, corpus, self.seeds.draw(rng))
                path = "/v1/completions"
            else:
                request = chat_request(task, rng, corpus, self.seeds.draw(rng))
                path = "/v1/chat/completions"
        elif task.kind == "image":
            request = image_request(task, rng, corpus, self.seeds.draw(rng))
            path = "/v1/images/generations"
        else:
            request = embedding_request(task, rng, corpus)
            path = "/v1/embeddings"
        return SyntheticRequest(task.id, path, request, task.volume_per_request)
