"""A canned OpenAI-compatible server for benchmarks: answers every chat completion at once with
the same 16-token answer in vLLM's format (``token_ids`` and ``token_id:N`` logprobs), streamed
or not, and ``GET /v1/models`` with one model, over keep-alive HTTP/1.1. Raw asyncio with uvloop
and precomputed bodies, so it costs far less than anything in front of it (a few tens of µs of
CPU per request).

    python benchmarks/canned_upstream.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys

TOKENS = [(100 + i, chr(ord("a") + i)) for i in range(16)]


def _entry(token_id: int, text: str) -> dict[str, object]:
    return {"token": f"token_id:{token_id}", "logprob": -0.5, "bytes": list(text.encode())}


def _stream_body() -> bytes:
    events = []
    base = {"id": "cmpl-canned", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    role = {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    events.append(role)
    for position, (token_id, text) in enumerate(TOKENS):
        last = position == len(TOKENS) - 1
        events.append(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": text},
                        "logprobs": {"content": [_entry(token_id, text)]},
                        "token_ids": [token_id],
                        "finish_reason": "length" if last else None,
                    }
                ],
            }
        )
    usage = {"prompt_tokens": 12, "completion_tokens": 16, "total_tokens": 28}
    events.append({**base, "choices": [], "usage": usage})
    payload = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    payload += b"data: [DONE]\n\n"
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        + f"content-length: {len(payload)}\r\n\r\n".encode()
        + payload
    )


def _json_body() -> bytes:
    payload = json.dumps(
        {
            "id": "cmpl-canned",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(t for _, t in TOKENS)},
                    "logprobs": {"content": [_entry(i, t) for i, t in TOKENS]},
                    "finish_reason": "length",
                    "token_ids": [i for i, _ in TOKENS],
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 16, "total_tokens": 28},
        }
    ).encode()
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(payload)}\r\n\r\n".encode()
        + payload
    )


def _models_body() -> bytes:
    payload = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(payload)}\r\n\r\n".encode()
        + payload
    )


STREAM, JSON, MODELS = _stream_body(), _json_body(), _models_body()


class Canned(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
            if head.startswith(b"get"):
                self.transport.write(MODELS)
                continue
            stream = b'"stream":true' in body.replace(b" ", b"")
            self.transport.write(STREAM if stream else JSON)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Canned, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    import uvloop

    uvloop.run(serve(int(sys.argv[1])))
