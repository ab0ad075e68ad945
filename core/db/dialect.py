"""The two ``INSERT ... ON CONFLICT`` forms billing needs, built for the engine's dialect.

Both SQLite (3.24+) and PostgreSQL support ``ON CONFLICT (cols) DO NOTHING`` and
``ON CONFLICT (cols) DO UPDATE SET ... WHERE ...`` with the same meaning, so one call site
serves both backends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.dml import Insert

from core.db.base import Base

Excluded = ReadOnlyColumnCollection[str, Any]


# The databases sn19 runs on (``core.db.Database`` refuses any other).
SUPPORTED_DIALECTS = ("postgresql", "sqlite")


def _table(model: type[Base]) -> Table:
    return cast("Table", model.__table__)


def _insert(dialect: str, table: Table) -> Any:
    """The dialect's INSERT construct (both have the same ``on_conflict_*`` methods)."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported database dialect {dialect!r}: sn19 runs on {SUPPORTED_DIALECTS}")


def insert_ignore(
    dialect: str, model: type[Base], values: Mapping[str, Any], conflict: Sequence[str]
) -> Insert:
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING``; rowcount is 0 when the row existed."""
    stmt: Insert = (
        _insert(dialect, _table(model))
        .values(dict(values))
        .on_conflict_do_nothing(index_elements=list(conflict))
    )
    return stmt


def upsert_increment(
    dialect: str,
    model: type[Base],
    values: Mapping[str, Any],
    conflict: Sequence[str],
    increment: Sequence[str],
    where: Callable[[Table, Excluded], ColumnElement[bool]] | None = None,
) -> Insert:
    """Insert ``values``, or add the ``increment`` columns of ``values`` to the existing row.

    ``where(table, excluded)`` guards the update: when it is false nothing changes and the
    statement's rowcount is 0 (a conditional increment, e.g. a spend counter under its cap).
    """
    table = _table(model)
    stmt = _insert(dialect, table).values(dict(values))
    excluded: Excluded = stmt.excluded
    update = {name: table.c[name] + excluded[name] for name in increment}
    guard = where(table, excluded) if where is not None else None
    result: Insert = stmt.on_conflict_do_update(
        index_elements=list(conflict), set_=update, where=guard
    )
    return result


def rowcount(result: Any) -> int:
    """Rows matched by an UPDATE/DELETE, or inserted by an INSERT ... ON CONFLICT."""
    count: int = cast("CursorResult[Any]", result).rowcount
    return count
