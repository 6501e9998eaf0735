"""Engines: the host's Flask-SQLAlchemy engine, or one of our own with sane SQLite settings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

#: How long opening a PostgreSQL connection may take (unless the URL sets ``connect_timeout``).
CONNECT_TIMEOUT_SECONDS = 10
_LIBPQ_DRIVERS = {"psycopg", "psycopg2"}


def _is_in_memory(database: str | None) -> bool:
    return database in (None, "", ":memory:")


def configure_sqlite(engine: Engine) -> None:
    """Give a SQLite engine what several processes sharing one file need.

    A busy timeout (web workers, the CLI and the scheduler write to the same file), WAL
    journaling for file databases, and enforced foreign keys. Call it before the engine's
    first connection; a host passing its own ``db`` may call it on ``db.engine`` too.
    """
    if engine.dialect.name != "sqlite":
        return
    in_memory = _is_in_memory(engine.url.database)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def create_umetrics_engine(url: str, **kwargs: Any) -> Engine:
    """Create the extension's own engine for ``UMETRICS_DATABASE_URL``."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # A connection the server dropped (restart, failover) is replaced on checkout, and a
        # server that accepts TCP but never answers fails the request instead of hanging it.
        kwargs.setdefault("pool_pre_ping", True)
        if parsed.get_driver_name() in _LIBPQ_DRIVERS and "connect_timeout" not in parsed.query:
            connect_args = dict(kwargs.pop("connect_args", {}))
            connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
            kwargs["connect_args"] = connect_args
        return create_engine(url, **kwargs)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", 30)
    if _is_in_memory(parsed.database):
        connect_args.setdefault("check_same_thread", False)
        kwargs.setdefault("poolclass", StaticPool)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    configure_sqlite(engine)
    return engine
