"""Writing validated event rows: persons for new distinct ids, then insert-or-skip by uuid."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

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
        inserted = connection.execute(
            insert_ignoring_conflicts(connection, events, "scope_id", "uuid").returning(
                events.c.id
            ),
            list(rows),
        )
        stored = len(inserted.all())
    return WriteResult(stored, len(rows) - stored)
