"""Writing validated event rows: persons for new distinct ids in SQL, then the events into the
app's event store (SQL or ClickHouse), insert-or-skip by uuid, in one SQL transaction (with
ClickHouse: one that creates persons, or none, see ``_write_elsewhere``)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from ..db.planner_stats import note_events_written
from ..errors import EventStoreUnavailable
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
    another event store, see :func:`_write_elsewhere`.
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
        return _write_elsewhere(engine, rows, by_scope, store)
    stored = _create_and_insert(
        engine, rows, by_scope, {s: list(f) for s, f in by_scope.items()}, store
    )
    note_events_written(engine, stored)
    return WriteResult(stored, len(rows) - stored)


def _create_and_insert(
    engine: Engine,
    rows: Sequence[dict[str, Any]],
    by_scope: Mapping[str, Mapping[str, int]],
    create: Mapping[str, Sequence[str]],
    store: EventStore,
    persons: Mapping[str, Mapping[str, int]] | None = None,
    created_hook: Callable[[dict[str, dict[str, int]]], None] | None = None,
) -> int:
    """In one transaction: the persons of ``create`` (per scope, first seen at ``by_scope``'s
    time), then the events; a failure of either rolls both back. Returns the events stored.
    ``persons`` are the ids already known of the other distinct ids; ``created_hook`` is told
    the ids made before the events are stored (and may add more)."""
    with engine.begin() as connection:
        new_persons: dict[str, dict[str, NewPerson]] = {}
        ids: dict[str, dict[str, int]] = {s: dict(m) for s, m in (persons or {}).items()}
        for scope_id, distinct_ids in create.items():
            created: dict[str, NewPerson] = {}
            first_ts = by_scope[scope_id]
            made = ensure_persons(
                connection,
                scope_id,
                {d: from_micros(first_ts[d]) for d in distinct_ids},
                created=created,
            )
            new_persons[scope_id] = created
            ids.setdefault(scope_id, {}).update(made)
        if created_hook is not None:
            created_hook(ids)
        return store.insert_events(connection, rows, new_persons, ids)


@dataclass(eq=False)
class _Creating:
    """The persons one write of this process is creating, in a transaction not committed yet."""

    #: Set once the write's persons have ids (``ids``), or once it failed before that.
    ids_ready: threading.Event = field(default_factory=threading.Event)
    ids: dict[str, dict[str, int]] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    committed: bool = False


#: (engine, scope, distinct id) -> the write of this process creating that distinct id's person.
_creating: dict[tuple[int, str, str], _Creating] = {}
_creating_lock = threading.Lock()


def _write_elsewhere(
    engine: Engine,
    rows: Sequence[dict[str, Any]],
    by_scope: Mapping[str, Mapping[str, int]],
    store: EventStore,
) -> WriteResult:
    """Events to another store (ClickHouse), persons in SQL; each event is stored with its
    person's id (``persons`` of ``insert_events``).

    A batch whose distinct ids all have persons (the usual case) reads them in autocommit and
    takes no SQL transaction: nothing in SQL is left to roll back if the store fails.

    Otherwise the batch creates the missing persons in a transaction held until its events are
    stored (a failure rolls them back). A distinct id whose person another write of this process
    is creating right now is left to that write: instead of waiting in the database for its
    commit (and so for its event insert: concurrent batches of new visitors would be stored one
    after the other), this batch waits only until that write has made the person's id (before
    opening its own transaction; a write only ever waits for writes registered before it),
    stores its events alongside, then waits for that write's outcome before answering. If that
    write failed, its persons were rolled back, so this batch fails too
    (``EventStoreUnavailable``, 503): its retry finds its events stored (duplicates), creates
    the persons, and gives the distinct ids an override to them (the store's stale-person
    check), so the copies stored with the rolled-back ids count for the new persons.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        known = {
            scope_id: person_ids_of(connection, scope_id, first_ts)
            for scope_id, first_ts in by_scope.items()
        }
        missing = {
            scope_id: [d for d in first_ts if d not in known[scope_id]]
            for scope_id, first_ts in by_scope.items()
        }
        if not any(missing.values()):
            stored = store.insert_events(connection, rows, {}, known)
            return WriteResult(stored, len(rows) - stored)
    mine = _Creating()
    create: dict[str, list[str]] = {}
    others: list[_Creating] = []
    with _creating_lock:
        for scope_id, distinct_ids in missing.items():
            for distinct_id in distinct_ids:
                other = _creating.setdefault((id(engine), scope_id, distinct_id), mine)
                if other is mine:
                    create.setdefault(scope_id, []).append(distinct_id)
                elif other not in others:
                    others.append(other)

    def made(ids: dict[str, dict[str, int]]) -> None:
        mine.ids = {scope_id: dict(ids.get(scope_id, {})) for scope_id in create}
        mine.ids_ready.set()

    try:
        # The others registered before this batch, so they never wait for it: no cycle. They
        # are waited for before this batch opens its transaction, which may hold a database
        # write lock (all of SQLite's) that they need to make their persons.
        for other in others:
            other.ids_ready.wait()
            for scope_id, theirs in other.ids.items():
                known.setdefault(scope_id, {}).update(theirs)
        if any(
            d not in known.get(s, {}) and d not in create.get(s, ())
            for s, ds in missing.items()
            for d in ds
        ):
            raise EventStoreUnavailable(
                "the batch creating the persons of some of these distinct ids failed; "
                "send this batch again"
            )
        stored = _create_and_insert(engine, rows, by_scope, create, store, known, made)
        mine.committed = True
    finally:
        with _creating_lock:
            for scope_id, distinct_ids in create.items():
                for distinct_id in distinct_ids:
                    del _creating[(id(engine), scope_id, distinct_id)]
        mine.ids_ready.set()
        mine.done.set()
    for other in others:
        other.done.wait()
        if not other.committed:
            raise EventStoreUnavailable(
                "the batch creating the persons of some of these distinct ids failed; "
                "send this batch again"
            )
    return WriteResult(stored, len(rows) - stored)
