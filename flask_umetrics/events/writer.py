"""Writing validated event rows: persons for new distinct ids in SQL, then the events into the
app's event store (SQL or ClickHouse), insert-or-skip by uuid, all in one SQL transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from ..db.planner_stats import note_events_written
from .identity import ensure_persons, person_ids_of
from .validation import from_micros

if TYPE_CHECKING:
    from ..engines import EventStore, NewPerson


@dataclass(frozen=True)
class WriteResult:
    stored: int
    duplicates: int


def write_events(
    engine: Engine, rows: Sequence[dict[str, Any]], store: EventStore | None = None
) -> WriteResult:
    """Store ``rows`` (from ``normalize_event``): persons first, then the events.

    An event whose ``(scope_id, uuid)`` is already stored is skipped and counted as a duplicate,
    so client retries and re-flushed buffers never double-count. ``store`` is the app's event
    store (default: events in the SQL database). A failure of either raises, and the persons
    the batch created are rolled back with it, so the caller retries the whole batch. With
    another event store, a batch whose distinct ids all have persons takes no SQL transaction.
    """
    if not rows:
        return WriteResult(0, 0)
    if store is None:
        from ..engines.sql.store import SqlEventStore

        store = SqlEventStore()
    by_scope: dict[str, dict[str, Any]] = defaultdict(dict)
    for row in rows:
        seen = by_scope[row["scope_id"]]
        first = seen.get(row["distinct_id"])
        if first is None or row["ts"] < first:
            seen[row["distinct_id"]] = row["ts"]
    if store.name != "sql":
        # The events go to another store: when every distinct id has a person already (the
        # usual case), one read outside a transaction, and no SQL transaction held open while
        # the event store writes (there is nothing in SQL to roll back if it fails).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if all(
                len(person_ids_of(connection, scope_id, first_ts)) == len(first_ts)
                for scope_id, first_ts in by_scope.items()
            ):
                stored = store.insert_events(connection, rows, {})
                return WriteResult(stored, len(rows) - stored)
    with engine.begin() as connection:
        new_persons: dict[str, dict[str, NewPerson]] = {}
        for scope_id, first_ts in by_scope.items():
            created: dict[str, NewPerson] = {}
            ensure_persons(
                connection,
                scope_id,
                {d: from_micros(ts) for d, ts in first_ts.items()},
                created=created,
            )
            new_persons[scope_id] = created
        stored = store.insert_events(connection, rows, new_persons)
    if store.name == "sql":
        note_events_written(engine, stored)
    return WriteResult(stored, len(rows) - stored)
