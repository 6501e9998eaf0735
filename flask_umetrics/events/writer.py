"""Writing validated event rows: persons for new distinct ids, then insert-or-skip by uuid."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

from ..db.planner_stats import note_events_written
from ..db.tables import events
from ..db.upsert import insert_ignoring_conflicts
from .identity import ensure_persons
from .validation import from_micros


@dataclass(frozen=True)
class WriteResult:
    stored: int
    duplicates: int


def write_events(engine: Engine, rows: Sequence[dict[str, Any]]) -> WriteResult:
    """Store ``rows`` (from ``normalize_event``) in one transaction.

    An event whose ``(scope_id, uuid)`` is already stored is skipped and counted as a duplicate,
    so client retries and re-flushed buffers never double-count.
    """
    if not rows:
        return WriteResult(0, 0)
    by_scope: dict[str, dict[str, Any]] = defaultdict(dict)
    for row in rows:
        seen = by_scope[row["scope_id"]]
        first = seen.get(row["distinct_id"])
        if first is None or row["ts"] < first:
            seen[row["distinct_id"]] = row["ts"]
    stored = 0
    with engine.begin() as connection:
        for scope_id, first_ts in by_scope.items():
            ensure_persons(connection, scope_id, {d: from_micros(ts) for d, ts in first_ts.items()})
        if connection.dialect.name == "postgresql":
            stored = _insert_postgresql(connection, rows)
        else:
            inserted = connection.execute(
                insert_ignoring_conflicts(connection, events, "scope_id", "uuid").returning(
                    events.c.id
                ),
                list(rows),
            )
            stored = len(inserted.all())
    note_events_written(engine, stored)
    return WriteResult(stored, len(rows) - stored)


#: One statement text whatever the batch size: PostgreSQL parses and plans it once per
#: connection, instead of a new multi-row VALUES text (hundreds of placeholders) per batch.
_UNNEST_INSERT = text(
    "INSERT INTO umetrics_events "
    "(scope_id, uuid, event, distinct_id, ts, session_id, active, properties) "
    "SELECT s, u, e, d, t, si, a, CAST(p AS JSONB) FROM unnest("
    "CAST(:scope AS TEXT[]), CAST(:uuid AS TEXT[]), CAST(:event AS TEXT[]), "
    "CAST(:distinct_id AS TEXT[]), CAST(:ts AS BIGINT[]), CAST(:session_id AS TEXT[]), "
    "CAST(:active AS BOOLEAN[]), CAST(:properties AS TEXT[])) AS r(s, u, e, d, t, si, a, p) "
    "ON CONFLICT (scope_id, uuid) DO NOTHING RETURNING 1"
)


def _insert_postgresql(connection: Connection, rows: Sequence[dict[str, Any]]) -> int:
    columns: dict[str, list[Any]] = {
        "scope": [],
        "uuid": [],
        "event": [],
        "distinct_id": [],
        "ts": [],
        "session_id": [],
        "active": [],
        "properties": [],
    }
    for row in rows:
        columns["scope"].append(row["scope_id"])
        columns["uuid"].append(row["uuid"])
        columns["event"].append(row["event"])
        columns["distinct_id"].append(row["distinct_id"])
        columns["ts"].append(row["ts"])
        columns["session_id"].append(row["session_id"])
        columns["active"].append(row["active"])
        columns["properties"].append(json.dumps(row["properties"], separators=(",", ":")))
    return len(connection.execute(_UNNEST_INSERT, columns).all())
