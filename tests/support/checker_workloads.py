"""The checker suite's behaviours: which engine a miner runs, and which requests it gets.

Every behaviour is one miner (its own hotkey) answering ``jobs`` requests sent through the real
gateway with the official SDK; each request is deterministic (prompt, parameters and seed from
the behaviour's index). ``honest`` behaviours must score ≥ 0.95 on every job, cheats at most
``cheat_mean`` (0.2, or 0.1 for the constrained cheats) on average (docs/checker.md has the table).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

CHAT, IMAGE, EMBED = "sn19-tiny-chat", "sn19-tiny-diffusion", "all-minilm-l6-v2"
Endpoint = Literal["chat", "completion", "image", "image_edit", "embedding"]

PROMPTS = (
    "Tell me about cats.",
    "What is 2+2?",
    "Write a poem about the sea.",
    "hello",
    "Explain quantum computing in simple words.",
    "List three fruits.",
    "Who are you?",
    "Translate 'dog' to French.",
    "Summarize the plot of Hamlet in two sentences.",
    "Give me a recipe for pancakes.",
    "Why is the sky blue?",
    "Write a haiku about autumn.",
    "What's the capital of Peru?",
    "Describe a sunset over the mountains.",
    "How do airplanes fly?",
    "Tell me a joke about programmers.",
    "Héllo wörld ✓ — what's up? 🙂",
    "Compare Python and Rust for a beginner.",
    "What should I pack for a week in Norway?",
    "Write a limerick about a cat named Bob.",
    "Explain the difference between TCP and UDP.",
    "What are the health benefits of green tea?",
    "Give me five names for a bakery.",
    "How does a bicycle stay upright?",
)
SYSTEMS = (None, "You are a helpful assistant.", "You are terse.", None)
MAX_TOKENS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
IMAGE_PROMPTS = (
    "a red cat on a mat",
    "a blue dog in a car",
    "mountains at dawn",
    "portrait of an old man",
    "a bowl of fruit",
    "city skyline at night",
    "a cozy cabin in snow",
    "abstract painting in bright colours",
)
SENTENCES = (
    "The cat sat on the mat.",
    "Stock markets fell sharply today.",
    "A kitten is a young cat.",
    "How do I reset my password?",
    "Quantum computers use qubits.",
    "The recipe needs two eggs and flour.",
    "Héllo wörld ✓",
    "Bittensor is a decentralised network for machine intelligence.",
)


@dataclass(frozen=True)
class Call:
    endpoint: Endpoint
    body: dict[str, Any]
    seed: int
    stream: bool = False


@dataclass
class Behaviour:
    name: str
    honest: bool
    task: str
    calls: Callable[[int], Call]
    engine: Callable[[], Any] | None = None  # None: the subprocess miner (other thread count)
    jobs: int = 30
    # Jobs that count (e.g. padding: only where the cheat changed the answer); ``max_calls``
    # bounds how many requests are sent to collect ``jobs`` of them.
    counts: Callable[[Any, Call], bool] | None = None
    max_calls: int = 0
    note: str = ""
    # A cheat passes the table when its mean is at most this.
    cheat_mean: float = 0.2
    instance: Any = field(default=None, repr=False)


def messages(index: int) -> list[dict[str, str]]:
    prompt = PROMPTS[index % len(PROMPTS)] + ("" if index < len(PROMPTS) else f" ({index})")
    system = SYSTEMS[index % len(SYSTEMS)]
    turns = [{"role": "system", "content": system}] if system else []
    return [*turns, {"role": "user", "content": prompt}]


def chat(
    index: int,
    *,
    temperature: float,
    top_p: float | None = None,
    max_tokens: int | None = None,
    n: int = 1,
    seed_base: int = 1000,
) -> Call:
    seed = seed_base + index * 7
    body: dict[str, Any] = {
        "model": CHAT,
        "messages": messages(index),
        "max_tokens": max_tokens or MAX_TOKENS[index % len(MAX_TOKENS)],
        "temperature": temperature,
        "seed": seed,
        "n": n,
    }
    if top_p is not None:
        body["top_p"] = top_p
    if index % 9 == 4:
        body["stop"] = ["\n\n", "###"]
    return Call("chat", body, seed, stream=index % 2 == 0)


# Constrained requests (SPEC §7): schemas small enough that the dev model can complete them
# (short strings, enums, booleans), so answers end both by ``stop`` and by ``length``.
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "happy": {"type": "boolean"},
        "mood": {"enum": ["calm", "busy", "sad"]},
    },
    "required": ["name", "happy", "mood"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 10},
        "unit": {"enum": ["c", "f"]},
    },
    "required": ["city", "unit"],
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": WEATHER,
        },
    },
    {
        "type": "function",
        "function": {
            "name": "remember",
            "description": "Store a fact about a person.",
            "parameters": PERSON,
        },
    },
]
Constrained = Literal["json_object", "json_schema", "named_tool", "required_tool", "auto_tool"]
CONSTRAINED_TEMPERATURES = (0.0, 0.7, 1.0)


def constrained(
    index: int,
    kind: Constrained,
    *,
    temperature: float | None = None,
    seed_base: int = 20_000,
    max_tokens: tuple[int, ...] = (96, 128, 192, 256),
) -> Call:
    """A chat request under ``response_format`` or with tools; temperature 0, 0.7 and 1.0 in
    turn unless given."""
    temp = CONSTRAINED_TEMPERATURES[index % 3] if temperature is None else temperature
    call = chat(index, temperature=temp, seed_base=seed_base)
    body = dict(call.body)
    body.pop("stop", None)
    body["max_tokens"] = max_tokens[index % len(max_tokens)]
    if kind == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        schema = {"name": "person", "schema": PERSON, "strict": True}
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    else:
        body["tools"] = TOOLS
        body["tool_choice"] = {
            "named_tool": {"type": "function", "function": {"name": "get_weather"}},
            "required_tool": "required",
            "auto_tool": "auto",
        }[kind]
    return Call("chat", body, call.seed, stream=call.stream)


def completion(index: int, *, temperature: float, top_p: float | None = None) -> Call:
    seed = 5000 + index * 7
    text = PROMPTS[index % len(PROMPTS)]
    prompt: Any = text if index % 2 else [256, *text.encode()]
    body: dict[str, Any] = {
        "model": CHAT,
        "prompt": prompt,
        "max_tokens": MAX_TOKENS[index % len(MAX_TOKENS)],
        "temperature": temperature,
        "seed": seed,
    }
    if top_p is not None:
        body["top_p"] = top_p
    return Call("completion", body, seed, stream=index % 3 == 0)


def mixed(index: int, *, seed_base: int = 3000) -> Call:
    """Every temperature and top_p of the honest grid, in turn."""
    temperature = (0.0, 0.7, 1.0, 1.5)[index % 4]
    top_p = (None, 0.9)[(index // 4) % 2]
    return chat(index, temperature=temperature, top_p=top_p, seed_base=seed_base)


def image(index: int, *, n: int | None = None, edit_every: int = 0) -> Call:
    seed = 10_000 + index * 13
    fmt = ("png", "png", "jpeg", "webp")[index % 4]
    body: dict[str, Any] = {
        "model": IMAGE,
        "prompt": IMAGE_PROMPTS[index % len(IMAGE_PROMPTS)],
        "size": "64x64",
        "n": n or (1, 1, 2)[index % 3],
        "seed": seed,
        "steps": (3, 4, 6, 10)[index % 4],
        "output_format": fmt,
    }
    if edit_every and index % edit_every == edit_every - 1:
        body["image"] = _init_png(index)
        body["strength"] = 0.6
        return Call("image_edit", body, seed)
    return Call("image", body, seed)


def _init_png(index: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.new("RGB", (64, 64), (40 + index * 11 % 200, 90, 160))
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def embedding(index: int) -> Call:
    count = 1 + index % 6
    inputs = [SENTENCES[(index + k) % len(SENTENCES)] for k in range(count)]
    body: dict[str, Any] = {"model": EMBED, "input": inputs if count > 1 else inputs[0]}
    if index % 5 == 3:
        body["dimensions"] = 128
    return Call("embedding", body, index)
