"""Miner answers built from the strict ``protocol.miner`` types, as a real miner renders them:
SSE pieces for chat and completion streams, JSON for embeddings and images."""

from __future__ import annotations

import base64
import io

import msgspec

from protocol.miner import (
    MinerChatChunk,
    MinerChatChunkChoice,
    MinerChatLogprobs,
    MinerCompletionChoice,
    MinerCompletionChunk,
    MinerCompletionLogprobs,
    MinerDelta,
    MinerEmbedding,
    MinerEmbeddingList,
    MinerImage,
    MinerImagesResponse,
)
from protocol.openai.common import TokenLogprob, TopLogprob, Usage
from protocol.sse import DONE, data_event

ENC = msgspec.json.Encoder()
WORDS = ("Hello", " there", ",", " how", " are", " you", "?", " I", " am", " fine")


def tokens(count: int) -> list[tuple[int, str]]:
    return [(index % len(WORDS) + 100, WORDS[index % len(WORDS)]) for index in range(count)]


def _entry(token: str, index: int, top: int) -> TokenLogprob:
    return TokenLogprob(
        token=token,
        logprob=-0.1 * (index % 5),
        bytes=list(token.encode()),
        top_logprobs=[
            TopLogprob(token=f"alt{k}", logprob=-1.0 - k, bytes=None) for k in range(top)
        ],
    )


def chat_chunks(
    count: int = 4,
    *,
    n: int = 1,
    top: int = 0,
    finish: str | None = "stop",
    usage: bool = True,
    prompt_tokens: int = 10,
) -> list[bytes]:
    """Events of one chat stream (role chunk, one chunk per token per choice, a finishing
    chunk, usage), each an SSE ``data:`` event; without ``[DONE]``."""
    out: list[bytes] = []

    def chunk(choices: list[MinerChatChunkChoice], used: Usage | None = None) -> bytes:
        return data_event(
            ENC.encode(
                MinerChatChunk(
                    id="m-1", created=1, model="sn19-tiny-chat", choices=choices, usage=used
                )
            )
        )

    for choice in range(n):
        out.append(
            chunk(
                [
                    MinerChatChunkChoice(
                        index=choice,
                        delta=MinerDelta(role="assistant", content=""),
                        logprobs=MinerChatLogprobs(content=[]),
                        token_ids=[],
                    )
                ]
            )
        )
    for position, (token_id, text) in enumerate(tokens(count)):
        for choice in range(n):
            out.append(
                chunk(
                    [
                        MinerChatChunkChoice(
                            index=choice,
                            delta=MinerDelta(content=text),
                            logprobs=MinerChatLogprobs(content=[_entry(text, position, top)]),
                            token_ids=[token_id],
                        )
                    ]
                )
            )
    if finish is not None:
        for choice in range(n):
            out.append(
                chunk(
                    [
                        MinerChatChunkChoice(
                            index=choice,
                            delta=MinerDelta(content=""),
                            finish_reason=finish,  # type: ignore[arg-type]
                            logprobs=MinerChatLogprobs(content=[]),
                            token_ids=[],
                        )
                    ]
                )
            )
    if usage:
        out.append(
            chunk(
                [],
                Usage(
                    prompt_tokens=prompt_tokens,
                    completion_tokens=count * n,
                    total_tokens=prompt_tokens + count * n,
                ),
            )
        )
    return out


def completion_chunks(
    count: int = 4, *, n: int = 1, top: int = 0, finish: str | None = "length", usage: bool = True
) -> list[bytes]:
    out: list[bytes] = []
    for position, (token_id, text) in enumerate(tokens(count)):
        for choice in range(n):
            out.append(
                data_event(
                    ENC.encode(
                        MinerCompletionChunk(
                            id="m-2",
                            created=1,
                            model="sn19-tiny-chat",
                            choices=[
                                MinerCompletionChoice(
                                    index=choice,
                                    text=text,
                                    token_ids=[token_id],
                                    logprobs=MinerCompletionLogprobs(
                                        tokens=[text],
                                        token_logprobs=[-0.5],
                                        top_logprobs=[{f"alt{k}": -1.0 - k for k in range(top)}]
                                        if top
                                        else None,
                                        text_offset=[0],
                                    ),
                                    finish_reason=finish if position == count - 1 else None,  # type: ignore[arg-type]
                                )
                            ],
                        )
                    )
                )
            )
    if usage:
        out.append(
            data_event(
                ENC.encode(
                    MinerCompletionChunk(
                        id="m-2",
                        created=1,
                        model="sn19-tiny-chat",
                        choices=[],
                        usage=Usage(
                            prompt_tokens=3, completion_tokens=count * n, total_tokens=3 + count * n
                        ),
                    )
                )
            )
        )
    return out


def stream_body(events: list[bytes], *, done: bool = True, pieces: int = 1) -> list[bytes]:
    """The events split into ``pieces`` network reads, with ``[DONE]`` at the end."""
    raw = b"".join(events) + (DONE if done else b"")
    if pieces <= 1:
        return [raw]
    size = max(1, len(raw) // pieces)
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def embeddings_body(count: int, dimensions: int) -> bytes:
    return ENC.encode(
        MinerEmbeddingList(
            data=[
                MinerEmbedding(index=i, embedding=[0.5 + i / 10] * dimensions) for i in range(count)
            ],
            model="all-minilm-l6-v2",
        )
    )


def png(width: int, height: int, shade: int = 80) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def images_body(count: int, width: int, height: int) -> bytes:
    encoded = base64.b64encode(png(width, height)).decode()
    return ENC.encode(
        MinerImagesResponse(
            created=1,
            data=[MinerImage(b64_json=encoded) for _ in range(count)],
            output_format="png",
        )
    )
