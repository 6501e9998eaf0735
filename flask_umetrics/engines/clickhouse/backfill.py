"""Copying an install's SQL events (and its persons and distinct ids) into ClickHouse:
``flask umetrics clickhouse backfill``.

- **Resumable.** Events are read in ``events.id`` order, ``batch_size`` at a time; after each
  batch is stored, its last id is recorded in ``umetrics_backfill_progress`` (in ClickHouse, next
  to the rows it describes). A run starts after the recorded id, so an interrupted copy goes on
  where it stopped, and a later run copies only what SQL gained since.
- **Idempotent.** Each batch goes through the store's exactly-once insert (a uuid look-up, then
  an insert with a deduplication token): a batch stored but not yet recorded when the copy was
  interrupted is found again and stored nothing twice. Persons and distinct ids are copied only
  where ClickHouse has no row for them yet.
- **Faithful.** A copied event keeps its uuid, and its ``seq`` is its SQL ``events.id``: ties of
  ``ts`` break in the same order as on SQL, and the GA4 forwarding watermark (an ``events.id``)
  means the same events on both stores. Live ClickHouse rows get clock values (about 1.7e18),
  far above any id, so every copied event orders before them.
- **Privacy first.** An event whose distinct id has no person in SQL any more (the person was
  deleted, or anonymised, after the app switched to ClickHouse) is skipped, never copied back.
  Copied persons and map rows get version 1, below every live mirror (clock) version, so a
  change mirrored while the backfill runs always wins.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, and_, select

from ...db.tables import events, person_distinct_ids, persons
from ...events.validation import to_micros
from .mirror import MAP_COLUMNS, PERSON_COLUMNS
from .schema import BACKFILL_PROGRESS, DISTINCT_IDS, PERSONS

if TYPE_CHECKING:
    from .store import ClickHouseEventStore

EVENTS_SOURCE = "sql:events"
#: The version of copied person and map rows: lower than any version a live mirror stamps.
BACKFILL_VERSION = 1
DEFAULT_BATCH_SIZE = 10_000
_LOOKUP_CHUNK = 1000


@dataclass
class BackfillReport:
    """``resumed_after``: the SQL id the run started after (0: from the start); ``last_id``: the
    id it reached; events ``read`` from SQL, ``copied`` now, ``already_there`` (same uuid),
    ``skipped`` (no person any more); persons and distinct ids copied now."""

    persons_copied: int = 0
    distinct_ids_copied: int = 0
    resumed_after: int = 0
    last_id: int = 0
    sql_max_id: int = 0
    read: int = 0
    copied: int = 0
    already_there: int = 0
    skipped: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


def progress_of(store: ClickHouseEventStore) -> tuple[int, int, int]:
    """``(last_id, copied, skipped)`` recorded for the events copy (zeros before any)."""
    row = store.client.query(
        f"SELECT max(last_id), argMax(copied, last_id), argMax(skipped, last_id) "
        f"FROM {BACKFILL_PROGRESS} WHERE source = {{source:String}}",
        parameters={"source": EVENTS_SOURCE},
    ).result_rows[0]
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def backfill(
    store: ClickHouseEventStore,
    engine: Engine,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    progress: Callable[[str, BackfillReport], None] | None = None,
) -> BackfillReport:
    """Copy persons, distinct ids, then events from the SQL database ``engine`` into ``store``.

    ``max_batches`` stops after that many event batches (a bounded run; the next one resumes).
    ``progress(stage, report)`` is called after each batch of each stage.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = BackfillReport()
    _copy_persons(store, engine, report, progress)
    _copy_distinct_ids(store, engine, report, progress)
    _copy_events(store, engine, report, batch_size, max_batches, progress)
    return report


def _copy_persons(
    store: ClickHouseEventStore,
    engine: Engine,
    report: BackfillReport,
    progress: Callable[[str, BackfillReport], None] | None,
) -> None:
    client, after = store.client, 0
    while True:
        with engine.connect() as connection:
            rows = connection.execute(
                select(persons)
                .where(persons.c.id > after)
                .order_by(persons.c.id)
                .limit(_LOOKUP_CHUNK)
            ).all()
        if not rows:
            return
        after = rows[-1].id
        present = {
            int(pid)
            for (pid,) in client.query(
                f"SELECT DISTINCT id FROM {PERSONS} WHERE id IN {{ids:Array(Int64)}}",
                parameters={"ids": [row.id for row in rows]},
            ).result_rows
        }
        data = [
            [
                row.scope_id,
                row.id,
                json.dumps(row.properties or {}, separators=(",", ":"), sort_keys=True),
                bool(row.is_identified),
                to_micros(row.created_at),
                0,
                BACKFILL_VERSION,
            ]
            for row in rows
            if row.id not in present
        ]
        if data:
            client.insert(PERSONS, data, column_names=PERSON_COLUMNS, settings=_settings(store))
        report.persons_copied += len(data)
        if progress is not None:
            progress("persons", report)


def _copy_distinct_ids(
    store: ClickHouseEventStore,
    engine: Engine,
    report: BackfillReport,
    progress: Callable[[str, BackfillReport], None] | None,
) -> None:
    client = store.client
    table = person_distinct_ids
    after: tuple[str, str] | None = None
    while True:
        query = select(table).order_by(table.c.scope_id, table.c.distinct_id).limit(_LOOKUP_CHUNK)
        if after is not None:
            query = query.where(
                (table.c.scope_id > after[0])
                | and_(table.c.scope_id == after[0], table.c.distinct_id > after[1])
            )
        with engine.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:
            return
        after = (rows[-1].scope_id, rows[-1].distinct_id)
        by_scope: dict[str, list[Any]] = {}
        for row in rows:
            by_scope.setdefault(row.scope_id, []).append(row)
        data: list[list[Any]] = []
        for scope_id, scoped in by_scope.items():
            present = {
                distinct_id
                for (distinct_id,) in client.query(
                    f"SELECT DISTINCT distinct_id FROM {DISTINCT_IDS} "
                    "WHERE scope_id = {scope:String} AND distinct_id IN {ids:Array(String)}",
                    parameters={"scope": scope_id, "ids": [row.distinct_id for row in scoped]},
                ).result_rows
            }
            data += [
                [scope_id, row.distinct_id, row.person_id, 0, BACKFILL_VERSION]
                for row in scoped
                if row.distinct_id not in present
            ]
        if data:
            client.insert(DISTINCT_IDS, data, column_names=MAP_COLUMNS, settings=_settings(store))
        report.distinct_ids_copied += len(data)
        if progress is not None:
            progress("distinct ids", report)


def _copy_events(
    store: ClickHouseEventStore,
    engine: Engine,
    report: BackfillReport,
    batch_size: int,
    max_batches: int | None,
    progress: Callable[[str, BackfillReport], None] | None,
) -> None:
    last_id, copied_total, skipped_total = progress_of(store)
    report.resumed_after = report.last_id = last_id
    mapped = person_distinct_ids.c.person_id
    query = (
        select(
            events.c.id,
            events.c.scope_id,
            events.c.uuid,
            events.c.event,
            events.c.distinct_id,
            events.c.ts,
            events.c.session_id,
            events.c.active,
            events.c.properties,
            mapped,
        )
        .select_from(
            events.outerjoin(
                person_distinct_ids,
                and_(
                    person_distinct_ids.c.scope_id == events.c.scope_id,
                    person_distinct_ids.c.distinct_id == events.c.distinct_id,
                ),
            )
        )
        .order_by(events.c.id)
        .limit(batch_size)
    )
    with engine.connect() as connection:
        report.sql_max_id = int(
            connection.execute(select(events.c.id).order_by(events.c.id.desc()).limit(1)).scalar()
            or 0
        )
    batches = 0
    while max_batches is None or batches < max_batches:
        with engine.connect() as connection:
            rows = connection.execute(query.where(events.c.id > last_id)).all()
        if not rows:
            return
        batches += 1
        keep = [row for row in rows if row.person_id is not None]
        stored = store.copy_events(
            [
                {
                    "scope_id": row.scope_id,
                    "uuid": row.uuid if row.uuid is not None else f"sql-event-{row.id}",
                    "event": row.event,
                    "distinct_id": row.distinct_id,
                    "ts": row.ts,
                    "session_id": row.session_id,
                    "active": row.active,
                    "properties": row.properties if row.properties is not None else {},
                    "person_id": row.person_id,
                    "seq": row.id,
                }
                for row in keep
            ]
        )
        last_id = rows[-1].id
        skipped = len(rows) - len(keep)
        copied_total += stored
        skipped_total += skipped
        store.client.insert(
            BACKFILL_PROGRESS,
            [[EVENTS_SOURCE, last_id, copied_total, skipped_total]],
            column_names=["source", "last_id", "copied", "skipped"],
            settings=_settings(store),
        )
        report.last_id = last_id
        report.read += len(rows)
        report.copied += stored
        report.already_there += len(keep) - stored
        report.skipped += skipped
        if progress is not None:
            progress("events", report)


def _settings(store: ClickHouseEventStore) -> dict[str, Any]:
    settings: dict[str, Any] = {"async_insert": 0}
    if store.cluster:
        settings["insert_distributed_sync"] = 1
    return settings
