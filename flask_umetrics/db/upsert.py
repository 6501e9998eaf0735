"""``INSERT ... ON CONFLICT DO NOTHING`` for the two supported databases."""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert


def insert_ignoring_conflicts(connection: Connection, table: Table, *columns: str) -> Insert:
    """An insert into ``table`` that skips rows conflicting on the unique ``columns``."""
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(columns))
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(columns))
    raise NotImplementedError(f"flask-umetrics supports SQLite and PostgreSQL, not {name}")
