"""What a constrained answer must be, checked before it is called complete.

A chat request can require its answer's shape: ``response_format`` ``json_object`` (a JSON
object) or ``json_schema`` (JSON valid under the schema), or ``tool_choice`` ``required`` / a
named function (tool calls, in the task's format, to declared tools, with arguments valid under
each tool's ``parameters``). Miners decode such requests under a grammar, so an honest answer
always conforms; one that does not is the miner's fault (``BAD_RESPONSE``), found by the stream
reader when the choice ends: a non-streamed request then fails over, a stream ends with an
in-band error instead of ``[DONE]``. Organic and synthetic answers are held to the same check.

A choice cut by ``max_tokens`` (``finish_reason: "length"``) is not checked: its JSON is
incomplete by the client's own budget, as OpenAI returns it. With ``tool_choice`` ``auto`` the
answer may be text or calls; nothing is required.

``check_schema`` is the gateway's check that a client's schema is a valid JSON Schema (400).
Validators are compiled once per distinct schema (``functools.lru_cache``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import msgspec

from core.miners.attempts import StreamFailure
from core.miners.stats import Outcome
from protocol.miner import MinerChatRequest
from protocol.openai.chat import FunctionTool, NamedToolChoice
from protocol.tool_calls import ToolFormat, split_calls

ANY_OBJECT: dict[str, Any] = {"type": "object"}


class SchemaError(ValueError):
    """The schema a client sent is not a valid JSON Schema."""


@functools.lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads(schema_json)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _key(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def check_schema(schema: Mapping[str, Any]) -> None:
    from jsonschema.exceptions import SchemaError as Invalid

    try:
        _validator(_key(schema))
    except Invalid as exc:
        raise SchemaError(exc.message) from None


def _violation(value: object, schema: Mapping[str, Any]) -> str | None:
    error = next(iter(_validator(_key(schema)).iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "the top level"
    return f"{error.message} (at {where})"


def _broken(message: str) -> StreamFailure:
    return StreamFailure(Outcome.BAD_RESPONSE, message)


class Expectation(msgspec.Struct, frozen=True):
    """The shape a request requires of each complete choice (None fields: not required)."""

    # response_format: the schema the JSON must match ({"type": "object"} for json_object).
    schema: dict[str, Any] | None = None
    # tool_choice required / named: the callable tools (name -> parameters schema).
    tools: dict[str, dict[str, Any]] | None = None
    tool_format: ToolFormat = "hermes"

    def check(self, text: str) -> None:
        if self.schema is not None:
            try:
                value = json.loads(text)
            except ValueError:
                raise _broken("the answer is not the JSON the response_format requires") from None
            problem = _violation(value, self.schema)
            if problem is not None:
                raise _broken(f"the answer does not match the response_format schema: {problem}")
        if self.tools is not None:
            _, calls = split_calls(text, self.tool_format)
            if not calls:
                raise _broken("the answer is not the tool call the tool_choice requires")
            for call in calls:
                parameters = self.tools.get(call.name)
                if parameters is None:
                    raise _broken(f"the answer calls {call.name!r}, which was not offered")
                problem = _violation(json.loads(call.arguments), parameters)
                if problem is not None:
                    raise _broken(f"the arguments of {call.name!r} are invalid: {problem}")


def expectation(request: MinerChatRequest, tool_format: ToolFormat | None) -> Expectation | None:
    """What ``request`` requires of its answer; None: nothing."""
    schema: dict[str, Any] | None = None
    form = request.response_format
    if form is not None and form.type == "json_object":
        schema = ANY_OBJECT
    elif form is not None and form.type == "json_schema":
        schema = (form.json_schema.schema if form.json_schema else None) or ANY_OBJECT
    tools: dict[str, dict[str, Any]] | None = None
    choice = request.tool_choice
    if request.tools and tool_format is not None and choice not in (None, "auto", "none"):
        offered = {
            tool.function.name: tool.function.parameters or ANY_OBJECT
            for tool in request.tools
            if isinstance(tool, FunctionTool)
        }
        if isinstance(choice, NamedToolChoice):
            offered = {name: p for name, p in offered.items() if name == choice.function.name}
        tools = offered
    if schema is None and tools is None:
        return None
    return Expectation(schema=schema, tools=tools, tool_format=tool_format or "hermes")
