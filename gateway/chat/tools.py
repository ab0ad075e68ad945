"""Checking what a chat request asks of its answer's shape: function tools, ``tool_choice``,
``parallel_tool_calls`` and ``response_format`` (400 naming the field otherwise).

- ``tools``: function tools only, distinct names, each ``parameters`` a valid JSON Schema (an
  object schema); the model must have a tool-call format (``TextSpec.tool_format``).
- ``tool_choice``: ``none``, ``auto``, ``required`` or a named function among the tools;
  any ``tool_choice`` needs tools (as OpenAI says). A required call and ``response_format``
  JSON exclude each other (an answer cannot be both).
- ``response_format``: ``text``, ``json_object``, or ``json_schema`` with a valid schema.
- ``functions`` / ``function_call`` (OpenAI's deprecated form) are refused: use ``tools``.
- ``stop`` is refused with JSON output or a required call: a stop string would cut the JSON
  the answer must be (and the cut answer would look like the miner's fault).
"""

from __future__ import annotations

from core.errors import InvalidRequest
from core.miners.structured import SchemaError, check_schema
from gateway.validation import unsupported
from protocol.catalog import Task
from protocol.openai.chat import ChatCompletionRequest, FunctionTool, NamedToolChoice


def _schema(schema: dict[str, object], param: str) -> None:
    try:
        check_schema(schema)
    except SchemaError as exc:
        raise InvalidRequest(
            f"Invalid JSON Schema in '{param}': {exc}", param=param, code="invalid_schema"
        ) from None


def _tool_names(request: ChatCompletionRequest, task: Task) -> set[str]:
    """The function tools' names, every definition checked."""
    text = task.text
    assert text is not None
    if request.functions:
        raise unsupported("functions", "functions is deprecated and not supported; use tools.")
    if request.function_call not in (None, "none"):
        raise unsupported("function_call", "function_call is not supported; use tool_choice.")
    tools = request.tools or []
    names: set[str] = set()
    for index, tool in enumerate(tools):
        if not isinstance(tool, FunctionTool):
            raise unsupported(f"tools[{index}].type", "Only function tools are supported.")
        name = tool.function.name
        if name in names:
            raise InvalidRequest(
                f"Two tools are named '{name}'.",
                param=f"tools[{index}].function.name",
                code="duplicate_tool",
            )
        names.add(name)
        if tool.function.parameters is not None:
            _schema(tool.function.parameters, f"tools[{index}].function.parameters")
    if tools and text.tool_format is None:
        raise unsupported("tools", f"The model '{task.id}' does not support tool calling.")
    return names


def check_tools(request: ChatCompletionRequest, task: Task) -> None:
    names = _tool_names(request, task)
    tools = request.tools or []
    choice = request.tool_choice
    if choice is not None and not isinstance(choice, str | NamedToolChoice):
        raise unsupported("tool_choice", "Only none, auto, required or a named function.")
    forced = choice == "required" or isinstance(choice, NamedToolChoice)
    if choice is not None and not tools:
        raise InvalidRequest(
            "tool_choice is only allowed when tools are given.",
            param="tool_choice",
            code="missing_tools",
        )
    if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
        raise InvalidRequest(
            f"tool_choice names '{choice.function.name}', which is not among the tools.",
            param="tool_choice.function.name",
            code="unknown_tool",
        )
    form = request.response_format
    shaped = forced or (form is not None and form.type != "text")
    if shaped and request.stop:
        raise unsupported(
            "stop", "stop cannot be combined with JSON output or a required tool call."
        )
    if form is None or form.type == "text":
        return
    if forced:
        raise InvalidRequest(
            "response_format JSON and a required tool call cannot both apply.",
            param="response_format",
            code="invalid_value",
        )
    if form.type == "json_schema":
        if form.json_schema is None:
            raise InvalidRequest(
                "response_format json_schema needs a json_schema object.",
                param="response_format.json_schema",
                code="missing_json_schema",
            )
        if form.json_schema.schema is not None:
            _schema(form.json_schema.schema, "response_format.json_schema.schema")
