"""Event engines: where events are stored and (later) where report SQL runs.

Persons, flags, stats, keys, segments and GA4 always live in the umetrics SQL database. Events
live either there too (``UMETRICS_EVENT_STORE=sql``: ``engines/sql``) or in ClickHouse
(``clickhouse``: ``engines/clickhouse``). Everything engine-specific sits under this package;
``events/`` keeps validation, buffering and the public ``track``/``identify`` and calls the
app's :class:`EventStore`. See docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from ..errors import NotAvailableOnClickHouse
from ..state import current_state


@dataclass(frozen=True)
class NewPerson:
    """A person a write created in SQL for a distinct id it had not seen."""

    person_id: int
    created_at: datetime


class EventStore(Protocol):
    """The event side of one engine. Every method runs inside the SQL transaction
    ``connection`` that made the matching change to persons, so a failure in the store rolls
    the SQL change back and the caller may retry the whole call."""

    #: ``"sql"`` or ``"clickhouse"``.
    name: str

    def insert_events(
        self,
        connection: Connection,
        rows: Sequence[Mapping[str, Any]],
        new_persons: Mapping[str, Mapping[str, NewPerson]],
        persons: Mapping[str, Mapping[str, int]],
    ) -> int:
        """Store each row whose ``(scope_id, uuid)`` is not stored yet; how many were stored.
        ``new_persons`` (scope -> distinct id -> person) were created for this batch;
        ``persons`` (scope -> distinct id -> person id) holds the person of every row's
        distinct id, for an engine that stores it on the event."""
        ...

    def delete_person_events(
        self, connection: Connection, scope_id: str, distinct_ids: Sequence[str]
    ) -> int:
        """Delete every event of ``distinct_ids``; how many."""
        ...

    def anonymize_person_events(
        self,
        connection: Connection,
        scope_id: str,
        renames: Mapping[str, str],
        pii_keys: Collection[str],
    ) -> int:
        """Rename each event's distinct id (old -> new), give it a uuid that embeds no client
        value, and drop ``pii_keys`` from its properties; how many events were rewritten."""
        ...

    def mirror_persons(
        self,
        connection: Connection,
        scope_id: str,
        person_ids: Collection[int],
        gone_distinct_ids: Collection[str] = (),
        *,
        forget: bool = False,
    ) -> None:
        """Copy the SQL state of ``person_ids`` (and the removal of ``gone_distinct_ids``) to
        the engine's own person tables, if it keeps any. ``forget`` (delete, anonymise): no
        earlier copy may keep who they were, so older copies and every row of the gone ids go."""
        ...


def require_sql_events(feature: str) -> None:
    """Raise the 501 ``not_available_on_clickhouse`` error unless events are in SQL.

    Called where a report or feature reads events with SQL that is not ported to ClickHouse
    yet; porting it means giving it a ClickHouse path and removing this call there.
    """
    if current_state().event_store.name != "sql":
        raise NotAvailableOnClickHouse(feature)
