"""The app's Flask-SQLAlchemy handle, in its own module so models and analytics can share it."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

# The app reuses flask-umetrics' helpers: UTC timestamps that read back timezone-aware on SQLite,
# and the SQLite settings (busy timeout, WAL, foreign keys) several processes sharing one file need.
from flask_umetrics.db.engine import configure_sqlite
from flask_umetrics.db.types import UTCDateTime, utcnow


class Base(DeclarativeBase):
    """Declarative base, so the models use SQLAlchemy 2.x typed ``Mapped`` columns."""


db = SQLAlchemy(model_class=Base)

__all__ = ["Base", "UTCDateTime", "configure_sqlite", "db", "utcnow"]
