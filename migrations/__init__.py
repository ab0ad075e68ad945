"""Alembic migrations for the validator database (one metadata: ``core.db.tables``).

Run them with ``sn19 db upgrade`` (or ``alembic -c migrations/alembic.ini upgrade head``).
"""
