"""The live feed: what happened in the last few minutes, newest first, with a per-minute count.

The window is ``now - minutes <= ts <= now`` (both ends included; events stamped after ``now``
by a skewed client clock are not shown). ``per_minute`` splits it into ``minutes`` slices of 60
seconds from ``since``; the last slice also holds an event stamped exactly ``now``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import case, func, literal, select

from ..db.tables import events
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from ..events.validation import from_micros, to_micros
from ..state import resolve_scope
from .connection import report_connection

MAX_MINUTES = 1440
MAX_LIMIT = 1000
_MINUTE_US = 60_000_000


def now() -> datetime:
    """The current time; tests replace this function to pin the window."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class LiveEvent:
    uuid: str | None
    event: str
    distinct_id: str
    timestamp: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class MinuteCount:
    time: str
    count: int


@dataclass(frozen=True)
class LiveFeed:
    since: str
    until: str
    count: int
    events: list[LiveEvent]
    per_minute: list[MinuteCount]


def _iso(micros: int) -> str:
    return from_micros(micros).isoformat()


def live(scope_id: str | None = None, *, minutes: int = 30, limit: int = 100) -> LiveFeed:
    """The newest ``limit`` events of the window (ties by id, newest id first), the number of
    events in the whole window, and one zero-filled count per minute."""
    if not 1 <= minutes <= MAX_MINUTES:
        raise ValidationError("minutes", f"must be between 1 and {MAX_MINUTES}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be between 1 and {MAX_LIMIT}")
    scope = resolve_scope(scope_id)
    until_us = to_micros(now())
    since_us = until_us - minutes * _MINUTE_US
    if is_clickhouse():
        from ..engines.clickhouse.live import feed as clickhouse_feed

        found, counts = clickhouse_feed(scope, since_us, until_us, minutes, limit)
        rows: list[Any] = [
            LiveEvent(uuid, event, distinct_id, _iso(us), json.loads(properties or "{}"))
            for uuid, event, distinct_id, us, properties in found
        ]
    else:
        rows, counts = _sql_feed(scope, since_us, until_us, minutes, limit)
    start = from_micros(since_us)
    series = [
        MinuteCount((start + timedelta(minutes=i)).isoformat(), int(counts.get(i, 0)))
        for i in range(minutes)
    ]
    return LiveFeed(_iso(since_us), _iso(until_us), sum(p.count for p in series), rows, series)


def _sql_feed(
    scope: str, since_us: int, until_us: int, minutes: int, limit: int
) -> tuple[list[LiveEvent], dict[int, int]]:
    """The SQL engine's newest events and ``{minute: count}``."""
    window = [events.c.scope_id == scope, events.c.ts >= since_us, events.c.ts <= until_us]
    slice_ = (events.c.ts - since_us) // _MINUTE_US
    minute = case((slice_ >= minutes, literal(minutes - 1)), else_=slice_).label("minute")
    newest = (
        select(
            events.c.uuid,
            events.c.event,
            events.c.distinct_id,
            events.c.ts,
            events.c.properties,
        )
        .where(*window)
        .order_by(events.c.ts.desc(), events.c.id.desc())
        .limit(limit)
    )
    per_minute = select(minute, func.count().label("n")).where(*window).group_by(minute)
    with report_connection() as connection:
        rows = connection.execute(newest).all()
        counts = {row.minute: row.n for row in connection.execute(per_minute)}
    feed = [
        LiveEvent(row.uuid, row.event, row.distinct_id, _iso(row.ts), dict(row.properties or {}))
        for row in rows
    ]
    return feed, counts
