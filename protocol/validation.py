"""OpenAI-style descriptions of msgspec validation errors: the ``param`` a 400 names.

msgspec reports where a value failed as a JSONPath (``... - at `$.messages[0].content` ``) and
names unknown or missing fields in the message; ``param_from_error`` turns both into OpenAI's
``param`` (``messages[0].content``, ``temperature``, ``foo``).
"""

from __future__ import annotations

import re

_FIELD_NAMED = re.compile(r"^Object (?:contains unknown|missing required) field `([^`]*)`")
_PATH = re.compile(r" - at `\$(.*)`$")


def param_from_error(message: str) -> str | None:
    """``"Object missing required field `role` - at `$.messages[0]`"`` → ``messages[0].role``."""
    path = ""
    where = _PATH.search(message)
    if where is not None:
        path = where.group(1).replace("[...]", "").removeprefix(".")
    named = _FIELD_NAMED.match(message)
    if named is not None:
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return path or None


def describe_error(message: str) -> str:
    """The message without msgspec's ``- at `$...` `` suffix."""
    return _PATH.sub("", message)
