"""A database failure in one readable sentence, for the CLI and ``doctor`` (no traceback).

The URL is shown without its password; the driver's first line says what went wrong
(connection refused, database does not exist, unable to open the SQLite file).
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError


def describe_database_error(engine: Engine, error: SQLAlchemyError) -> str:
    """``Cannot use the umetrics database at <url>: <driver message>``."""
    url = engine.url.render_as_string(hide_password=True)
    original = error.orig if isinstance(error, DBAPIError) else error
    lines = [line.strip() for line in str(original).strip().splitlines() if line.strip()]
    reason = lines[0] if lines else type(original).__name__
    return f"Cannot use the umetrics database at {url}: {reason}."
