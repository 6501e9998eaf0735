"""The connection reports run on, and the statement timeout every report query runs under.

``UMETRICS_QUERY_TIMEOUT_SECONDS`` bounds what one report may cost the database: on PostgreSQL
with ``SET LOCAL statement_timeout`` (it ends with the report's transaction, so the pooled
connection goes back unchanged), on SQLite with a progress handler on the raw connection that
interrupts the statement after the deadline (removed before the connection goes back to the
pool). A report that runs out of time raises :class:`QueryTimeout`, which the REST API answers
503 ``query_timeout`` and the dashboard shows as a page saying so. Ingestion never runs here.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

from ..engines import require_sql_events
from ..errors import UMetricsError
from ..state import current_state
from .path_cleaning import register_sqlite

#: SQLite calls the progress handler every this many virtual-machine instructions (~ms apart).
_SQLITE_PROGRESS_STEPS = 10_000
#: PostgreSQL's SQLSTATE for a statement cancelled by ``statement_timeout``.
_QUERY_CANCELED = "57014"


class QueryTimeout(UMetricsError):
    """A report query ran longer than ``UMETRICS_QUERY_TIMEOUT_SECONDS``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The report ran longer than {seconds:g} seconds (UMETRICS_QUERY_TIMEOUT_SECONDS); "
            "shorten the range, sample it, or try again later."
        )
        self.seconds = seconds


def _is_timeout(error: sa_exc.DBAPIError, sqlite_deadline_passed: bool) -> bool:
    original = error.orig
    if type(original).__module__.startswith("sqlite3"):
        return sqlite_deadline_passed and "interrupted" in str(original).lower()
    return getattr(original, "sqlstate", None) == _QUERY_CANCELED


@contextmanager
def report_connection() -> Iterator[Connection]:
    """A read connection for one report, under the statement timeout.

    On PostgreSQL, JIT compilation is switched off for its transaction: report queries are big
    enough to trigger it, and compiling their CASE expressions costs more than it saves
    (measured: volume 1.9 s -> 1.0 s, retention 2.6 s -> 1.7 s on 1M events).

    Every report opens its connection here, so this is where a report not ported to the
    ClickHouse event store yet answers 501 ``not_available_on_clickhouse``, naming the report.
    """
    require_sql_events(_calling_report())
    with metadata_connection() as connection:
        yield connection


@contextmanager
def metadata_connection() -> Iterator[Connection]:
    """A read connection to the SQL database under the report timeout, whatever the event
    store: for reports whose SQL side reads only metadata (experiment exposures and units) and
    whose events, on a ClickHouse store, are read from ClickHouse."""
    seconds = float(current_state().settings["UMETRICS_QUERY_TIMEOUT_SECONDS"])
    with current_state().engine.connect() as connection:
        raw: Any = None
        deadline = time.monotonic() + seconds
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL jit = off")
            if seconds > 0:
                milliseconds = max(1, round(seconds * 1000))
                connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
        elif connection.dialect.name == "sqlite":
            register_sqlite(connection.connection.driver_connection)
        if connection.dialect.name == "sqlite" and seconds > 0:
            raw = connection.connection.driver_connection
            raw.set_progress_handler(
                lambda: int(time.monotonic() > deadline), _SQLITE_PROGRESS_STEPS
            )
        try:
            yield connection
        except sa_exc.DBAPIError as exc:
            if seconds > 0 and _is_timeout(exc, time.monotonic() > deadline):
                raise QueryTimeout(seconds) from exc
            raise
        finally:
            if raw is not None:
                raw.set_progress_handler(None, _SQLITE_PROGRESS_STEPS)


def _calling_report() -> str:
    """``The funnel report``: named after the module that asked for the connection."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__") in {__name__, "contextlib"}:
        frame = frame.f_back
    module = str(frame.f_globals.get("__name__", "report"))
    return f"The {module.rsplit('.', 1)[-1].replace('_', ' ')} report"
