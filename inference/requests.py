"""OpenAI requests → the engines' requests: what a request *means*, for miners and the checker.

The miner serves a request with the ``TextRequest`` / ``ImageRequest`` built here, and the
checker rebuilds the very same engine request from the request the miner was sent to recompute
the answer, so this mapping is the contract (the miner's ``miner_server.textmap`` delegates to
it). Pure functions, no web framework. Choices:

- the conversation is read by ``protocol.prompts.turns_of`` (as the gateway reads it): text
  content parts joined with ``"\\n"`` (as vLLM does), the tool calls of assistant turns, the
  call a tool message answers; function ``tools`` go to the model's chat template as plain JSON
  (``chat_prompt_ids``: one rendering for every local engine, hence the checker too);
- ``response_format`` ``json_object`` / ``json_schema`` and ``tool_choice`` ``required`` / a
  named function become a ``Constraint`` (decoded under a grammar: ``inference.grammars``) in
  the task's ``tool_format``;
- ``max_tokens``: chat takes the smaller of ``max_completion_tokens`` and ``max_tokens``; when
  neither is sent, the task's ``text.max_output_tokens`` capped by what the context leaves after
  the prompt; completions default to 16 as OpenAI does; more than ``max_output_tokens`` is
  refused;
- temperature and top_p default to 1.0; ``top_logprobs`` (chat) or ``logprobs`` (completions)
  set how many alternatives each token shows;
- refused, naming the field: tools for a model without a tool format, ``functions``,
  non-zero penalties, ``logit_bias``, non-text content, ``echo``, ``suffix``, ``best_of`` ≠
  ``n``, completions prompt batches, more than the task's ``max_n`` choices;
- images: ``size`` one of the task's sizes (``auto`` or absent: its default), ``steps`` at most
  ``max_steps`` (absent: ``default_steps``), ``n`` at most ``max_n``, the task's guidance scale
  unless the request names one, image ``i`` drawn with ``seed + i``; edits carry the base64
  ``image`` (and ``mask``) and ``strength`` (default 0.75).

Refusals raise ``RequestRefused`` (an ``EngineInputError``) with the OpenAI ``param``, an error
``code`` and, for fields valid in OpenAI but not served here, ``unsupported`` (the text that
follows "is not supported").
"""

from __future__ import annotations

import base64
import binascii
import json
import random
from collections.abc import Callable
from typing import Any

import msgspec

from inference.base import (
    ChatTurn,
    Constraint,
    EngineInputError,
    ImageRequest,
    TextRequest,
    ToolCallText,
)
from protocol.catalog import ImageSpec, TextSpec, parse_size
from protocol.miner import MinerChatRequest, MinerCompletionRequest, MinerImageEditRequest
from protocol.openai.chat import FunctionTool, NamedToolChoice
from protocol.openai.images import ImageGenerationRequest
from protocol.openai.shapes import LooseTexts, ShapeError, prompt_of
from protocol.prompts import PromptError, tool_definition, turns_of

COMPLETIONS_DEFAULT_MAX_TOKENS = 16
MAX_IMAGE_SEED = 2**32 - 1
DEFAULT_STRENGTH = 0.75

CountPrompt = Callable[[TextRequest], int]


class RequestRefused(EngineInputError):
    """The request cannot be served as sent. ``unsupported`` is set (possibly to ``""``) for a
    field OpenAI accepts that no engine here honours; it completes "`param` is not supported"."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        unsupported: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.unsupported = unsupported


def _unsupported(param: str, what: str = "") -> RequestRefused:
    return RequestRefused(
        f"`{param}` is not supported{what}.",
        param=param,
        code="unsupported_parameter",
        unsupported=what,
    )


# ---------------------------------------------------------------------------------------------
# Text


def chat_text_request(
    body: MinerChatRequest, spec: TextSpec, count_prompt: CountPrompt
) -> TextRequest:
    """The engine request a chat completion request stands for."""
    _refuse_chat_features(body, spec)
    try:
        read = turns_of(body.messages)
    except PromptError as exc:
        if exc.unsupported:
            raise _unsupported(exc.param, f": {exc}") from None
        raise RequestRefused(str(exc), param=exc.param) from None
    turns = tuple(
        ChatTurn(
            role=turn.role,
            content=turn.content,
            tool_calls=tuple(ToolCallText(c.name, c.arguments) for c in turn.tool_calls),
            tool_call_id=turn.tool_call_id,
        )
        for turn in read
    )
    requested = _smaller(body.max_completion_tokens, body.max_tokens)
    param = "max_completion_tokens" if body.max_completion_tokens is not None else "max_tokens"
    request = msgspec.structs.replace(
        _request(body, spec, body.top_logprobs or 0, messages=turns),
        tools=tuple(tool_definition(tool) for tool in body.tools or ()),
        constraint=constraint_of(body, spec),
    )
    return _with_max_tokens(request, requested, None, spec, count_prompt, param)


def constraint_of(body: MinerChatRequest, spec: TextSpec) -> Constraint | None:
    """The grammar a chat request decodes under, if any (see ``Constraint``)."""
    fmt = spec.tool_format or "hermes"
    form = body.response_format
    if form is not None and form.type in ("json_object", "json_schema"):
        schema = form.json_schema.schema if form.json_schema is not None else None
        return Constraint(schema=json.dumps(schema or {"type": "object"}), tool_format=fmt)
    choice = body.tool_choice
    if not body.tools or (choice not in ("required",) and not isinstance(choice, NamedToolChoice)):
        return None
    tools = tuple(
        (tool.function.name, json.dumps(tool.function.parameters or {"type": "object"}))
        for tool in body.tools
        if isinstance(tool, FunctionTool)
        and (not isinstance(choice, NamedToolChoice) or tool.function.name == choice.function.name)
    )
    return Constraint(tools=tools, tool_format=fmt)


def chat_prompt_ids(tokenizer: Any, request: TextRequest) -> list[int]:
    """The prompt's token ids as the model sees them: the model's chat template (with the
    request's tools) and a generation prompt for ``messages``; the tokenizer with its special
    tokens (BOS) for ``prompt``; ``prompt_ids`` as they are. The one rendering every local
    engine uses, so a miner and the checker see the same prompt."""
    if request.prompt_ids is not None:
        return list(request.prompt_ids)
    if request.messages is None:
        return list(tokenizer.encode(request.prompt or "", add_special_tokens=True))
    if not getattr(tokenizer, "chat_template", None):
        raise EngineInputError("this model has no chat template")
    conversation = [template_message(turn) for turn in request.messages]
    try:
        text = tokenizer.apply_chat_template(
            conversation,
            tools=list(request.tools) or None,
            add_generation_prompt=True,
            tokenize=False,
        )
    except Exception as exc:  # jinja raises for conversations a template refuses
        raise EngineInputError(f"chat template rejected the messages: {exc}") from exc
    return list(tokenizer.encode(text, add_special_tokens=False))


def template_message(turn: ChatTurn) -> dict[str, Any]:
    """One turn as a chat template (and an OpenAI-compatible server) reads it."""
    message: dict[str, Any] = {"role": turn.role, "content": turn.content}
    if turn.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{index}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for index, call in enumerate(turn.tool_calls)
        ]
    if turn.tool_call_id is not None:
        message["tool_call_id"] = turn.tool_call_id
    return message


def completion_text_request(
    body: MinerCompletionRequest, spec: TextSpec, count_prompt: CountPrompt
) -> TextRequest:
    """The engine request a (legacy) completions request stands for."""
    _refuse_common(body.frequency_penalty, body.presence_penalty, body.logit_bias)
    if body.echo:
        raise _unsupported("echo")
    if body.suffix:
        raise _unsupported("suffix")
    if body.best_of is not None and body.best_of != (body.n or 1):
        raise _unsupported("best_of", " (other than best_of = n)")
    prompt, prompt_ids = prompt_parts(body.prompt)
    request = _request(body, spec, body.logprobs or 0, prompt=prompt, prompt_ids=prompt_ids)
    default = COMPLETIONS_DEFAULT_MAX_TOKENS
    return _with_max_tokens(request, body.max_tokens, default, spec, count_prompt, "max_tokens")


def prompt_parts(prompt: LooseTexts) -> tuple[str | None, tuple[int, ...] | None]:
    """One completions prompt as a string or as token ids; a batch of prompts is refused."""
    try:
        checked = prompt_of(prompt)
    except ShapeError as exc:
        if exc.unsupported:
            raise _unsupported(exc.param, f": {exc}") from None
        raise RequestRefused(str(exc), param=exc.param) from None
    if isinstance(checked, str):
        return checked, None
    return None, tuple(checked)


def _request(
    body: MinerChatRequest | MinerCompletionRequest,
    spec: TextSpec,
    top_logprobs: int,
    *,
    messages: tuple[ChatTurn, ...] | None = None,
    prompt: str | None = None,
    prompt_ids: tuple[int, ...] | None = None,
) -> TextRequest:
    n = body.n or 1
    if n > spec.max_n:
        raise RequestRefused(f"n: at most {spec.max_n} choices per request.", param="n")
    stop = body.stop
    return TextRequest(
        max_tokens=1,  # set by _with_max_tokens
        messages=messages,
        prompt=prompt,
        prompt_ids=prompt_ids,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        n=n,
        seed=body.seed,
        stop=() if stop is None else (stop,) if isinstance(stop, str) else tuple(stop),
        top_logprobs=top_logprobs,
    )


def _with_max_tokens(
    request: TextRequest,
    requested: int | None,
    default: int | None,
    spec: TextSpec,
    count_prompt: CountPrompt,
    param: str,
) -> TextRequest:
    if requested is not None:
        if requested > spec.max_output_tokens:
            raise RequestRefused(
                f"{param}: at most {spec.max_output_tokens} tokens per choice.",
                param=param,
                code="context_length_exceeded",
            )
        max_tokens = requested
    elif default is not None:
        max_tokens = min(default, spec.max_output_tokens)
    else:
        room = spec.context_length - count_prompt(request)
        if room <= 0:
            raise RequestRefused(
                f"The prompt fills the model's context of {spec.context_length} tokens.",
                param="messages",
                code="context_length_exceeded",
            )
        max_tokens = min(spec.max_output_tokens, room)
    return msgspec.structs.replace(request, max_tokens=max_tokens)


def _smaller(first: int | None, second: int | None) -> int | None:
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)


def _refuse_common(
    frequency_penalty: float | None, presence_penalty: float | None, logit_bias: object
) -> None:
    if frequency_penalty:
        raise _unsupported("frequency_penalty", " (other than 0)")
    if presence_penalty:
        raise _unsupported("presence_penalty", " (other than 0)")
    if logit_bias:
        raise _unsupported("logit_bias")


def _refuse_chat_features(body: MinerChatRequest, spec: TextSpec) -> None:
    _refuse_common(body.frequency_penalty, body.presence_penalty, body.logit_bias)
    if body.tools and spec.tool_format is None:
        raise _unsupported("tools", " by this model")
    if any(not isinstance(tool, FunctionTool) for tool in body.tools or ()):
        raise _unsupported("tools", " (other than function tools)")
    choice = body.tool_choice
    if choice is not None and not isinstance(choice, str | NamedToolChoice):
        raise _unsupported("tool_choice", " (other than none, auto, required, a function)")
    if body.functions:
        raise _unsupported("functions")
    if body.function_call is not None and body.function_call != "none":
        raise _unsupported("function_call")
    for name in ("audio", "prediction", "web_search_options"):
        if getattr(body, name) is not None:
            raise _unsupported(name)
    if body.modalities and any(modality != "text" for modality in body.modalities):
        raise _unsupported("modalities", " (only `text`)")


# ---------------------------------------------------------------------------------------------
# Images


def image_request(
    body: ImageGenerationRequest | MinerImageEditRequest,
    spec: ImageSpec,
    *,
    random_seed: Callable[[], int] | None = None,
) -> ImageRequest:
    """The engine request of an image generation or edit request. A request without a seed
    gets ``random_seed()`` (the miner's choice); without ``random_seed`` it is refused (the
    checker cannot reproduce an unseeded image). Edits carry their decoded image and mask."""
    if body.response_format == "url":
        raise _unsupported("response_format", " (`url`: images come back as `b64_json`)")
    size = spec.default_size if body.size in (None, "auto") else body.size
    if size not in spec.sizes:
        raise RequestRefused(f"size: one of {', '.join(spec.sizes)}.", param="size")
    steps = spec.default_steps if body.steps is None else body.steps
    if steps > spec.max_steps:
        raise RequestRefused(f"steps: at most {spec.max_steps}.", param="steps")
    n = body.n or 1
    if n > spec.max_n:
        raise RequestRefused(f"n: at most {spec.max_n} images per request.", param="n")
    seed = body.seed
    if seed is None:
        if random_seed is None:
            raise RequestRefused("seed: required to reproduce the image.", param="seed")
        seed = random_seed()
    width, height = parse_size(size)
    request = ImageRequest(
        prompt=body.prompt,
        width=width,
        height=height,
        steps=steps,
        seed=seed,
        n=n,
        negative_prompt=body.negative_prompt or "",
        guidance_scale=spec.guidance_scale if body.guidance_scale is None else body.guidance_scale,
        output_format=body.output_format or "png",
    )
    if isinstance(body, MinerImageEditRequest):
        request = msgspec.structs.replace(
            request,
            init_image=decode_b64_image(body.image, "image"),
            mask_image=None if body.mask is None else decode_b64_image(body.mask, "mask"),
            strength=DEFAULT_STRENGTH if body.strength is None else body.strength,
        )
    return request


def miner_random_seed() -> int:
    """The seed a miner draws for an unseeded image request."""
    return random.randint(0, MAX_IMAGE_SEED)


def decode_b64_image(data: str, param: str) -> bytes:
    """Base64 (or a ``data:`` URL) → the encoded image bytes; not decoded as an image here."""
    payload = data.partition(",")[2] if data.startswith("data:") else data
    try:
        decoded = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise RequestRefused(f"{param}: not valid base64.", param=param) from None
    if not decoded:
        raise RequestRefused(f"{param}: empty image.", param=param)
    return decoded
