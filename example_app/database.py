"""The app's Flask-SQLAlchemy handle, in its own module so models and analytics can share it."""

from __future__ import annotations

from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, event
from sqlalchemy.orm import DeclarativeBase

# The app reuses flask-umetrics' helpers: UTC timestamps that read back timezone-aware on SQLite,
# and the SQLite settings (busy timeout, WAL, foreign keys) several processes sharing one file need.
from flask_umetrics.db.engine import configure_sqlite
from flask_umetrics.db.types import UTCDateTime, utcnow


class Base(DeclarativeBase):
    """Declarative base, so the models use SQLAlchemy 2.x typed ``Mapped`` columns."""


db = SQLAlchemy(model_class=Base)


def relax_sqlite_sync(engine: Engine) -> None:
    """``synchronous=NORMAL``: SQLite's recommended setting in WAL mode for this demo's file.

    A commit then skips its fsync (the WAL is synced at checkpoints), so the thousands of small
    transactions of ``seed-demo`` take milliseconds instead of seconds. The database stays
    consistent; a power cut may lose the last commits, which a demo can afford. A production
    app decides this for itself. Call it before the engine's first connection.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


__all__ = ["Base", "UTCDateTime", "configure_sqlite", "db", "relax_sqlite_sync", "utcnow"]
