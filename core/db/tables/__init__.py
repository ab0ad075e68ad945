"""The metadata aggregator: importing this package registers every table on ``Base.metadata``.

Each domain keeps its tables in its own module here (``billing.py`` now; scoring and checker
tables later). To add a domain: create ``core/db/tables/<domain>.py`` with models on
``core.db.base.Base`` and add its import below; Alembic's ``env.py`` and the tests use
``metadata`` from this package, so nothing else changes.
"""

from __future__ import annotations

from core.db.base import Base
from core.db.tables import billing, checks, requests, scoring, web

metadata = Base.metadata

__all__ = ["Base", "billing", "checks", "metadata", "requests", "scoring", "web"]
