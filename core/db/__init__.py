"""Database engine, unit of work and table metadata (ARCHITECTURE: core owns table metadata).

- ``Database`` / ``create_engine``: see ``core.db.engine`` for the transaction pattern.
- ``metadata``: every table (``core.db.tables`` aggregates one module per domain).
- ``core.db.migrate``: applying the Alembic migrations (imported on demand: it loads Alembic).
- ``insert_ignore`` / ``upsert_increment``: the two portable ``ON CONFLICT`` forms.
"""

from __future__ import annotations

from core.db.base import Base, UTCDateTime, utcnow
from core.db.dialect import insert_ignore, rowcount, upsert_increment
from core.db.engine import Database, create_engine
from core.db.tables import metadata

__all__ = [
    "Base",
    "Database",
    "UTCDateTime",
    "create_engine",
    "insert_ignore",
    "metadata",
    "rowcount",
    "upsert_increment",
    "utcnow",
]
