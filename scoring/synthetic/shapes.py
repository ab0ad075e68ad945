"""Constrained synthetic chat requests (SPEC §7): the shapes agents ask for, so miners are
scored on answers decoded under a grammar as well as on free text.

A share of the chat requests of a task that serves tool calls (``text.tool_format``) asks for
one of: ``response_format`` ``json_object`` or ``json_schema`` (strict), a named tool call,
``tool_choice`` ``required``, or tools with ``tool_choice`` ``auto``. The tools and schemas are a
small fixed set of the kind agents declare (a lookup, a record to fill); ``shape`` returns the
fields to set on a ``ChatCompletionRequest``.
"""

from __future__ import annotations

import random
from typing import Any

from protocol.openai.chat import (
    FunctionDefinition,
    FunctionTool,
    JsonSchemaFormat,
    NamedFunction,
    NamedToolChoice,
    ResponseFormat,
)

# Share of a tool-capable task's chat requests that are constrained or carry tools.
SHARE = 0.15
KINDS = ("json_object", "json_schema", "named_tool", "required_tool", "auto_tool")

SCHEMAS: dict[str, dict[str, Any]] = {
    "summary": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 80},
            "points": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        },
        "required": ["title", "points"],
        "additionalProperties": False,
    },
    "verdict": {
        "type": "object",
        "properties": {
            "answer": {"enum": ["yes", "no", "unsure"]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reason": {"type": "string", "maxLength": 200},
        },
        "required": ["answer", "reason"],
        "additionalProperties": False,
    },
}
TOOLS: tuple[FunctionDefinition, ...] = (
    FunctionDefinition(
        name="search_web",
        description="Search the web and return the top results.",
        parameters={
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "max_results": {"type": "integer", "minimum": 1, "maximum": 10},
            },
            "required": ["query"],
        },
    ),
    FunctionDefinition(
        name="get_weather",
        description="The current weather in a city.",
        parameters={
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    ),
    FunctionDefinition(
        name="save_note",
        description="Save a note for the user.",
        parameters={
            "type": "object",
            "properties": {"text": {"type": "string"}, "tags": {"type": "array"}},
            "required": ["text"],
        },
    ),
)


def shape(rng: random.Random) -> dict[str, Any]:
    """The ``ChatCompletionRequest`` fields of one constrained (or tool-carrying) request."""
    kind = rng.choice(KINDS)
    if kind == "json_object":
        return {"response_format": ResponseFormat(type="json_object")}
    if kind == "json_schema":
        name = rng.choice(sorted(SCHEMAS))
        schema = JsonSchemaFormat(name=name, schema=SCHEMAS[name], strict=True)
        return {"response_format": ResponseFormat(type="json_schema", json_schema=schema)}
    tools = [FunctionTool(function=tool) for tool in rng.sample(TOOLS, rng.randint(1, len(TOOLS)))]
    choice: Any = {"required_tool": "required", "auto_tool": "auto"}.get(kind)
    if kind == "named_tool":
        choice = NamedToolChoice(function=NamedFunction(name=rng.choice(tools).function.name))
    return {"tools": tools, "tool_choice": choice}
