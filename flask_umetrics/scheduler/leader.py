"""Leader election among scheduler processes, through the database.

PostgreSQL: a session advisory lock held on a dedicated connection (released by the server if
the process dies). Other databases: a lease row renewed by the leader and taken over by
conditional update once it expires.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Protocol

from sqlalchemy import Connection, Engine, insert, or_, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..db.tables import scheduler_leases
from ..db.types import utcnow

logger = logging.getLogger("flask_umetrics")


class Leader(Protocol):
    def is_leader(self) -> bool: ...

    def release(self) -> None: ...


class AdvisoryLockLeader:
    """PostgreSQL ``pg_try_advisory_lock`` on a connection kept open while leading."""

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        digest = hashlib.sha256(f"umetrics:{name}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)
        self._connection: Connection | None = None

    def is_leader(self) -> bool:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                return True
            except DBAPIError:
                logger.warning("flask-umetrics: lost the scheduler leader connection")
                self._drop()
        connection = self._engine.connect()
        try:
            got = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
            ).scalar()
            connection.commit()
        except DBAPIError:
            connection.close()
            return False
        if got:
            self._connection = connection
            return True
        connection.close()
        return False

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()
            finally:
                self._connection = None

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            self._connection.commit()
            self._connection.close()
        except DBAPIError:
            self._drop()
        self._connection = None


class LeaseLeader:
    """A row per leadership name: the owner renews ``expires_at``; others wait for it to lapse."""

    def __init__(self, engine: Engine, name: str, owner: str, lease: timedelta) -> None:
        self._engine = engine
        self._name = name
        self._owner = owner
        self._lease = lease

    def is_leader(self) -> bool:
        now = utcnow()
        try:
            with self._engine.begin() as connection:
                result = connection.execute(
                    update(scheduler_leases)
                    .where(
                        scheduler_leases.c.name == self._name,
                        or_(
                            scheduler_leases.c.owner == self._owner,
                            scheduler_leases.c.expires_at < now,
                        ),
                    )
                    .values(owner=self._owner, expires_at=now + self._lease)
                )
                if result.rowcount == 1:
                    return True
            with self._engine.begin() as connection:
                connection.execute(
                    insert(scheduler_leases).values(
                        name=self._name,
                        owner=self._owner,
                        acquired_at=now,
                        expires_at=now + self._lease,
                    )
                )
            return True
        except IntegrityError:
            return False

    def release(self) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                update(scheduler_leases)
                .where(
                    scheduler_leases.c.name == self._name, scheduler_leases.c.owner == self._owner
                )
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )


def make_leader(engine: Engine, name: str, owner: str, lease: timedelta) -> Leader:
    """The best leader election the database offers."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLockLeader(engine, name)
    return LeaseLeader(engine, name, owner, lease)
