"""Loading typed configuration (TOML files, environment variables) into msgspec Structs.

Pure functions over mappings: the callers (each process's settings module) pass the process
environment and file contents in, so nothing here reads the environment by itself.

Environment names are ``<PREFIX>_<SECTION>__<FIELD>``: ``SN19_GATEWAY__PORT=8080`` sets
``settings.gateway.port``. Lists are comma-separated; nested Structs nest with ``__``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any, TypeVar, get_type_hints

import msgspec

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the field."""


class Secret:
    """A string that never shows itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def _dec_hook(tp: type, obj: Any) -> Any:
    if tp is Secret and isinstance(obj, str):
        return Secret(obj)
    raise NotImplementedError  # msgspec's hook protocol: "not a type this hook handles"


def enc_hook(obj: Any) -> Any:
    """Encode settings for display: secrets stay masked."""
    if isinstance(obj, Secret):
        return repr(obj)
    raise NotImplementedError  # msgspec's hook protocol: "not a type this hook handles"


def _set_path(tree: dict[str, Any], path: list[str], value: str) -> None:
    node = tree
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(path)}: conflicts with a scalar setting")
        node = child
    node[path[-1]] = value


def _coerce_env(value: str, hint: Any) -> Any:
    """Turn an environment string into what the field's type expects (lists, bools, numbers)."""
    origin = getattr(hint, "__origin__", None)
    if origin in (list, tuple, set, frozenset):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _env_tree(cls: type[Any], env: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """Variables under the prefix whose first segment names a field of `cls`. Others under the
    same prefix belong to another process's settings (``SN19_MINER_*``, ``SN19_CONFIG``) or to
    tools (``SN19_TEST_*``) and are left alone; a bad field inside a known section is an error."""
    tree: dict[str, Any] = {}
    marker = prefix.upper() + "_"
    fields = set(getattr(cls, "__struct_fields__", ()))
    for key, value in env.items():
        if not key.startswith(marker):
            continue
        path = [part.lower() for part in key[len(marker) :].split("__") if part]
        if not path or path[0] not in fields:
            continue
        hint = _field_hint(cls, path)
        _set_path(tree, path, _coerce_env(value, hint))
    return tree


def _field_hint(cls: type[Any], path: list[str]) -> Any:
    current: Any = cls
    for part in path:
        try:
            hints = get_type_hints(current)
        except TypeError:
            return None
        current = hints.get(part)
        if current is None:
            return None
    return current


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(
    cls: type[T],
    *,
    env: Mapping[str, str],
    prefix: str,
    toml_text: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Build `cls` from defaults < TOML file < environment < explicit overrides."""
    tree: dict[str, Any] = {}
    if toml_text:
        try:
            tree = tomllib.loads(toml_text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"settings file is not valid TOML: {exc}") from exc
    tree = _merge(tree, _env_tree(cls, env, prefix))
    if overrides:
        tree = _merge(tree, overrides)
    try:
        return msgspec.convert(tree, type=cls, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(
            f"invalid setting: {describe_validation_error(exc, prefix=prefix)}"
        ) from exc


def describe_validation_error(exc: msgspec.ValidationError, *, prefix: str = "") -> str:
    """Rewrite msgspec's ``... - at `$.a.b[0]` `` into ``a.b[0]: ...`` so the field leads."""
    text = str(exc)
    message, sep, where = text.rpartition(" - at `")
    if not sep:
        return text
    path = where.rstrip("`").removeprefix("$").removeprefix(".")
    del prefix
    return f"{path}: {message}" if path else message


def dump_settings(settings: Any) -> dict[str, Any]:
    """Settings as plain data with secrets masked (for `sn19 config show` and logs)."""
    result: dict[str, Any] = msgspec.to_builtins(settings, enc_hook=enc_hook)
    return result
