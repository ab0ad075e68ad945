"""The customer→miner request mapping, shared by the gateway (organic) and the synthetic sender.

A validated public OpenAI request becomes the request a miner is sent: the task's model name,
the output budget (the client's ``max_tokens``, checked against the task; else what fits),
a seed when the client sent none (kept for the checker), always a stream with a final usage
chunk and per-token logprobs for text, ``b64_json`` for images and float vectors for embeddings.
Validation that only concerns the public API (tools, penalties, shapes) stays in the gateway;
what is here raises ``core.errors.InvalidRequest`` naming the parameter, as the gateway answers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import msgspec

from core.errors import InvalidRequest
from core.miners.structured import Expectation, expectation
from core.tokens import TokenCounter, check_token_ids
from protocol.catalog import EmbeddingSpec, ImageSpec, Task, TextSpec, parse_size
from protocol.miner import MinerChatRequest, MinerCompletionRequest, MinerEmbeddingList
from protocol.openai.chat import (
    ChatCompletionRequest,
    ChatMessage,
    FunctionCall,
    StreamOptions,
    ToolCall,
)
from protocol.openai.completions import CompletionRequest
from protocol.openai.embeddings import EmbeddingRequest
from protocol.openai.images import ImageEditFields, ImageGenerationRequest
from protocol.prompts import PromptError, Turn, tool_definition, turns_of

SEED_RANGE = 2**31
MAX_IMAGE_SEED = 2**32 - 1
COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # as OpenAI's /v1/completions


def unsupported(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported_parameter")


def seed_or_draw(seed: int | None) -> int:
    return seed if seed is not None else random.randrange(SEED_RANGE)


# ---------------------------------------------------------------------------------------------
# Text


class TextCall(msgspec.Struct, frozen=True):
    """A text request as the miner is sent it, with what the gateway bills and relays by, and
    the shape its answer must have (``core.miners.structured``)."""

    request: MinerChatRequest | MinerCompletionRequest
    prompt_tokens: int
    max_tokens: int
    n: int
    expect: Expectation | None = None


def turns(messages: list[ChatMessage]) -> list[Turn]:
    """The conversation as the model reads it (``protocol.prompts.turns_of``), refusals as the
    gateway's 400s."""
    try:
        return turns_of(messages)
    except PromptError as exc:
        if exc.unsupported:
            raise unsupported(exc.param, str(exc)) from None
        raise InvalidRequest(str(exc), param=exc.param) from None


def miner_messages(turns: list[Turn]) -> list[ChatMessage]:
    """The normalised conversation as the miner is sent it."""
    return [
        ChatMessage(
            role=turn.role,  # type: ignore[arg-type]  # roles are the request's own
            content=turn.content,
            tool_calls=[
                ToolCall(
                    id=f"call_{index}_{position}",
                    function=FunctionCall(name=call.name, arguments=call.arguments),
                )
                for position, call in enumerate(turn.tool_calls)
            ]
            or None,
            tool_call_id=turn.tool_call_id,
        )
        for index, turn in enumerate(turns)
    ]


def max_tokens_for(
    requested: int | None, param: str, text: TextSpec, prompt_tokens: int, *, exact: bool
) -> int:
    """The output budget: the client's, checked against the task; else what fits."""
    room = text.context_length - prompt_tokens
    if requested is None:
        if room <= 0 and exact:
            raise InvalidRequest(
                f"The prompt is {prompt_tokens} tokens; this model's context is "
                f"{text.context_length} tokens.",
                param="messages",
                code="context_length_exceeded",
            )
        return min(text.max_output_tokens, room) if room > 0 else text.max_output_tokens
    if requested > text.max_output_tokens:
        raise InvalidRequest(
            f"{param} is {requested}; this model generates at most {text.max_output_tokens} "
            "tokens.",
            param=param,
        )
    if exact and requested > room:
        raise InvalidRequest(
            f"This model's context is {text.context_length} tokens: {prompt_tokens} in the "
            f"prompt plus {requested} requested ({param}) do not fit.",
            param=param,
            code="context_length_exceeded",
        )
    return requested


def chat_call(task: Task, request: ChatCompletionRequest, counter: TokenCounter) -> TextCall:
    """The miner's chat request (streamed, with usage and logprobs; a seed when none was sent)."""
    text = task.text
    assert text is not None, "chat tasks have a text section (checked by the catalog)"
    conversation = turns(request.messages)
    tools = [tool_definition(tool) for tool in request.tools or ()]
    prompt_tokens = counter.chat(conversation, tools, text.tool_format or "hermes")
    requested, param = request.max_tokens, "max_tokens"
    if request.max_completion_tokens is not None and (
        requested is None or request.max_completion_tokens < requested
    ):
        requested, param = request.max_completion_tokens, "max_completion_tokens"
    max_tokens = max_tokens_for(requested, param, text, prompt_tokens, exact=counter.exact)
    n = request.n or 1
    miner_request = MinerChatRequest(
        model=task.id,
        messages=miner_messages(conversation),
        max_tokens=max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        n=n,
        stop=request.stop,
        seed=seed_or_draw(request.seed),
        stream=True,
        stream_options=StreamOptions(include_usage=True),
        logprobs=True,
        top_logprobs=request.top_logprobs or None,
        tools=request.tools,
        tool_choice=request.tool_choice,
        parallel_tool_calls=request.parallel_tool_calls,
        response_format=request.response_format,
    )
    expect = expectation(miner_request, text.tool_format)
    return TextCall(miner_request, prompt_tokens, max_tokens, n, expect)


def completion_call(
    task: Task, request: CompletionRequest, prompt: str | list[int], counter: TokenCounter
) -> TextCall:
    """The miner's completion request for one validated ``prompt`` (text or token ids)."""
    text = task.text
    assert text is not None, "chat tasks have a text section (checked by the catalog)"
    exact = counter.exact or not isinstance(prompt, str)
    if isinstance(prompt, str):
        prompt_tokens = counter.prompt(prompt)
    else:
        check_token_ids(prompt, counter.vocab_size or text.vocab_size, "prompt")
        prompt_tokens = len(prompt)
    requested = request.max_tokens
    if requested is None:
        requested = min(COMPLETIONS_DEFAULT_MAX_TOKENS, text.max_output_tokens)
    max_tokens = max_tokens_for(requested, "max_tokens", text, prompt_tokens, exact=exact)
    n = request.n or 1
    miner_request = MinerCompletionRequest(
        model=task.id,
        prompt=prompt if isinstance(prompt, str) else [*prompt],
        max_tokens=max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        n=n,
        stop=request.stop,
        seed=seed_or_draw(request.seed),
        stream=True,
        stream_options=StreamOptions(include_usage=True),
        logprobs=request.logprobs or 0,
    )
    return TextCall(miner_request, prompt_tokens, max_tokens, n)


# ---------------------------------------------------------------------------------------------
# Images


class ImagePlan(msgspec.Struct, frozen=True):
    size: str
    width: int
    height: int
    n: int
    steps: int
    seed: int


def plan_image(spec: ImageSpec, request: ImageGenerationRequest | ImageEditFields) -> ImagePlan:
    size = request.size or "auto"
    if size == "auto":
        size = spec.default_size
    if size not in spec.sizes:
        raise InvalidRequest(
            f"size must be one of {', '.join(spec.sizes)} for this model.", param="size"
        )
    n = request.n or 1
    if n > spec.max_n:
        raise InvalidRequest(f"n must be at most {spec.max_n} for this model.", param="n")
    steps = request.steps or spec.default_steps
    if steps > spec.max_steps:
        raise InvalidRequest(
            f"steps must be at most {spec.max_steps} for this model.", param="steps"
        )
    width, height = parse_size(size)
    seed = seed_or_draw(request.seed)
    if not 0 <= seed <= MAX_IMAGE_SEED - (n - 1):
        # Image i is generated with seed + i, as a 32-bit generator seed.
        raise InvalidRequest(
            f"seed must be between 0 and {MAX_IMAGE_SEED - (n - 1)} for n={n}.", param="seed"
        )
    return ImagePlan(size=size, width=width, height=height, n=n, steps=steps, seed=seed)


def miner_generation(
    task: Task, request: ImageGenerationRequest, plan: ImagePlan
) -> ImageGenerationRequest:
    return msgspec.structs.replace(
        request,
        model=task.id,
        n=plan.n,
        size=plan.size,
        response_format="b64_json",
        steps=plan.steps,
        seed=plan.seed,
        quality=None,
        style=None,
        background=None,
        moderation=None,
        user=None,
        output_compression=None,
    )


# ---------------------------------------------------------------------------------------------
# Embeddings


def count_embedding_inputs(
    spec: EmbeddingSpec, inputs: Sequence[str | list[int]], counter: TokenCounter
) -> int:
    """The input tokens of an embedding request, within the task's limits (400 naming the
    input otherwise): at most ``max_inputs`` inputs of at most ``max_input_tokens`` tokens,
    token ids within the vocabulary."""
    if len(inputs) > spec.max_inputs:
        raise InvalidRequest(
            f"At most {spec.max_inputs} inputs per request for this model.",
            param="input",
            code="too_many_inputs",
        )
    total = 0
    for index, item in enumerate(inputs):
        if isinstance(item, str):
            tokens = counter.embedding_input(item)
            exact = counter.exact
        else:
            check_token_ids(item, counter.vocab_size or spec.vocab_size, f"input[{index}]")
            tokens, exact = len(item), True
        if exact and tokens > spec.max_input_tokens:
            raise InvalidRequest(
                f"input[{index}] is {tokens} tokens; this model accepts at most "
                f"{spec.max_input_tokens}.",
                param=f"input[{index}]",
                code="context_length_exceeded",
            )
        total += tokens
    return total


def miner_embeddings(
    task: Task, inputs: list[str] | list[list[int]], dimensions: int | None
) -> EmbeddingRequest:
    """Miners are always asked for float vectors (the gateway encodes base64 itself)."""
    loose: list[str | int | list[int]] = [*inputs]
    return EmbeddingRequest(
        model=task.id, input=loose, encoding_format="float", dimensions=dimensions
    )


def check_vectors(result: MinerEmbeddingList, expected: int, dimensions: int) -> None:
    """Raise ``ValueError`` unless there is one finite vector of the right size per input."""
    if len(result.data) != expected:
        raise ValueError(f"{len(result.data)} vectors for {expected} inputs")
    if sorted(item.index for item in result.data) != list(range(expected)):
        raise ValueError("vector indexes are not 0..n-1")
    for item in result.data:
        if len(item.embedding) != dimensions:
            raise ValueError(f"a vector has {len(item.embedding)} dimensions, not {dimensions}")
        if not all(math.isfinite(value) for value in item.embedding):
            raise ValueError("a vector has a non-finite value")
