"""The connection reports run on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from ..state import current_state


@contextmanager
def report_connection() -> Iterator[Connection]:
    """A read connection for one report.

    On PostgreSQL, JIT compilation is switched off for its transaction: report queries are big
    enough to trigger it, and compiling their CASE expressions costs more than it saves
    (measured: volume 1.9 s -> 1.0 s, retention 2.6 s -> 1.7 s on 1M events).
    """
    with current_state().engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL jit = off")
        yield connection
