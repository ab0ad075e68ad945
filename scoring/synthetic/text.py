"""Synthetic chat and completion requests that look like what customers send.

Parameters follow the mix an OpenAI-compatible API sees: most requests stream, many leave
``temperature``/``top_p``/``max_tokens`` at their defaults, those that set them favour round
numbers, a few ask for logprobs, several choices or a stop sequence. Prompts come from the
shipped corpus: templated questions about a topic for an audience with an optional style
instruction, standalone questions, and two-turn conversations; system prompts half the time.
On a task that serves tool calls, a share of chat requests ask for JSON or a tool call, or carry
tools (``scoring.synthetic.shapes``).
"""

from __future__ import annotations

import random

import msgspec

from protocol.catalog import Task
from protocol.openai.chat import ChatCompletionRequest, ChatMessage, StreamOptions
from protocol.openai.completions import CompletionRequest
from scoring.synthetic import shapes
from scoring.synthetic.corpus import Corpus, fill

ROUND_MAX_TOKENS = (32, 64, 100, 128, 150, 200, 256, 300, 400, 500, 512, 1000, 1024)
TEMPERATURES = (0.0, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.7, 0.8, 0.9, 1.0, 1.0, 1.2)
TOP_PS = (0.8, 0.9, 0.95, 0.95, 1.0)


def temperature(rng: random.Random) -> float | None:
    point = rng.random()
    if point < 0.3:
        return None
    if point < 0.85:
        return rng.choice(TEMPERATURES)
    return round(rng.uniform(0.05, 1.5), 2)


def top_p(rng: random.Random) -> float | None:
    return rng.choice(TOP_PS) if rng.random() < 0.25 else None


def max_tokens(rng: random.Random, limit: int) -> int | None:
    point = rng.random()
    if point < 0.2:
        return None
    # Round numbers mostly; otherwise a log-normal with a median of about 220 tokens.
    value = rng.choice(ROUND_MAX_TOKENS) if point < 0.75 else int(rng.lognormvariate(5.4, 0.7))
    return max(1, min(value, limit))


def _user_turn(rng: random.Random, corpus: Corpus) -> str:
    if rng.random() < 0.22:
        return rng.choice(corpus.questions)
    text = fill(
        rng.choice(corpus.chat_templates),
        topic=rng.choice(corpus.topics),
        audience=rng.choice(corpus.audiences),
        n=rng.choice((3, 3, 4, 5, 5, 7, 10)),
    )
    if rng.random() < 0.45:
        text = f"{text} {rng.choice(corpus.styles)}"
    return text


def chat_messages(rng: random.Random, corpus: Corpus) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    if rng.random() < 0.5:
        messages.append(ChatMessage(role="system", content=rng.choice(corpus.personas)))
    if rng.random() < 0.15:
        topic = rng.choice(corpus.topics)
        first = fill(rng.choice(corpus.chat_templates), topic=topic, audience="me")
        reply = fill(rng.choice(corpus.assistant_openers), topic=topic)
        messages.append(ChatMessage(role="user", content=first))
        messages.append(ChatMessage(role="assistant", content=reply[:1].upper() + reply[1:]))
        messages.append(ChatMessage(role="user", content=rng.choice(corpus.followups)))
        return messages
    messages.append(ChatMessage(role="user", content=_user_turn(rng, corpus)))
    return messages


def _limits(task: Task) -> tuple[int, int]:
    assert task.text is not None, "chat tasks have a text section (checked by the catalog)"
    return task.text.max_output_tokens, task.text.max_n


def chat_request(
    task: Task, rng: random.Random, corpus: Corpus, seed: int
) -> ChatCompletionRequest:
    limit, max_n = _limits(task)
    stream = rng.random() < 0.75
    logprobs = rng.random() < 0.08
    request = ChatCompletionRequest(
        model=task.id,
        messages=chat_messages(rng, corpus),
        max_tokens=max_tokens(rng, limit),
        temperature=temperature(rng),
        top_p=top_p(rng),
        n=2 if max_n >= 2 and rng.random() < 0.04 else None,
        stop=["\n\n"] if rng.random() < 0.05 else None,
        seed=seed,
        stream=True if stream else None,
        stream_options=StreamOptions(include_usage=True) if stream and rng.random() < 0.3 else None,
        logprobs=True if logprobs else None,
        top_logprobs=rng.choice((0, 1, 3, 5)) if logprobs else None,
    )
    assert task.text is not None
    if task.text.tool_format is not None and rng.random() < shapes.SHARE:
        # No stop sequence: one inside the JSON would end an honest answer before its grammar.
        request = msgspec.structs.replace(request, stop=None, **shapes.shape(rng))
    return request


def completion_request(
    task: Task, rng: random.Random, corpus: Corpus, seed: int
) -> CompletionRequest:
    limit, _ = _limits(task)
    stream = rng.random() < 0.6
    prompt = fill(rng.choice(corpus.completion_templates), topic=rng.choice(corpus.topics))
    return CompletionRequest(
        model=task.id,
        prompt=prompt,
        max_tokens=max_tokens(rng, limit) or 16,  # the completions API defaults to 16
        temperature=temperature(rng),
        top_p=top_p(rng),
        stop=["\n\n"] if rng.random() < 0.1 else None,
        seed=seed,
        stream=True if stream else None,
        logprobs=rng.choice((1, 3, 5)) if rng.random() < 0.08 else None,
    )
