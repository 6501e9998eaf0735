"""Telling "the database is unreachable" apart from a bug, and logging an outage once.

A REST request that fails because PostgreSQL is down, restarting or unreachable is not a bug:
it answers 503 with ``Retry-After`` (see ``api/router.py``), and since a batch is written in one
transaction the client can retry it with the same uuids. During an outage every request fails
the same way, so the log gets one warning when it starts and one line when requests succeed
again, not a traceback per request.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import exc as sa_exc

from ..errors import EventStoreUnavailable

logger = logging.getLogger("flask_umetrics")

#: SQLite's own "try again" answers; any other SQLite OperationalError (a missing table, a
#: syntax error) is a bug or a missing migration and stays a 500.
_SQLITE_BUSY = ("database is locked", "database is busy", "database table is locked")


def _driver_operational_errors() -> tuple[type[BaseException], ...]:
    try:  # psycopg is optional (the postgres extra)
        import psycopg
    except ImportError:
        return ()
    return (psycopg.OperationalError,)


def is_database_unavailable(error: BaseException) -> bool:
    """True when ``error`` means the database cannot answer now (connection refused or lost,
    server shutting down, pool exhausted, SQLite busy), so retrying later may succeed."""
    if isinstance(error, (sa_exc.DisconnectionError, sa_exc.TimeoutError, EventStoreUnavailable)):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if not isinstance(error, sa_exc.OperationalError):
            return False
        original = error.orig
        if type(original).__module__.startswith("sqlite3"):
            return any(text in str(original).lower() for text in _SQLITE_BUSY)
        return True
    return isinstance(error, _driver_operational_errors())


@dataclass
class _Outage:
    started: float
    failures: int


class OutageLog:
    """Per app: logs the first failure of an outage and its end, and counts the rest."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outage: _Outage | None = None

    def failed(self, error: BaseException, where: str) -> None:
        with self._lock:
            if self._outage is not None:
                self._outage.failures += 1
                return
            self._outage = _Outage(time.monotonic(), 1)
        logger.warning(
            "flask-umetrics: the database is unavailable (%s: %s) in %s; answering 503 with "
            "Retry-After until it answers again",
            type(error).__name__,
            str(error).strip().splitlines()[0] if str(error).strip() else "",
            where,
        )

    def succeeded(self) -> None:
        if self._outage is None:  # the common case, without taking the lock
            return
        with self._lock:
            outage, self._outage = self._outage, None
        if outage is not None:
            logger.warning(
                "flask-umetrics: the database answers again after %.1f s; %d request(s) were "
                "answered 503",
                time.monotonic() - outage.started,
                outage.failures,
            )

    @property
    def in_outage(self) -> bool:
        return self._outage is not None


_logs: weakref.WeakKeyDictionary[Flask, OutageLog] = weakref.WeakKeyDictionary()
_logs_lock = threading.Lock()


def outage_log(app: Flask) -> OutageLog:
    """The outage log of ``app`` (several apps per process each have their own)."""
    with _logs_lock:
        log = _logs.get(app)
        if log is None:
            log = _logs[app] = OutageLog()
        return log
