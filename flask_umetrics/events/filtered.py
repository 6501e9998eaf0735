"""Counts of events dropped on purpose at ingestion (bot user agents, Do-Not-Track / GPC).

Dropped events are not stored, so without these counters nobody could tell how much traffic the
filters removed. Ingestion adds to one row per scope, day and reason with a single upsert per
batch, and only when the batch dropped something: clean traffic pays nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from ..db.tables import filtered_events

REASONS = ("bot", "dnt")


def record_filtered(engine: Engine, scope_id: str, reason: str, count: int, zone: str) -> None:
    """Add ``count`` dropped events to today's (in ``zone``) row of ``scope_id`` and ``reason``."""
    if count <= 0:
        return
    day = datetime.now(timezone.utc).astimezone(ZoneInfo(zone)).date().isoformat()
    values = {"scope_id": scope_id, "day": day, "reason": reason, "events": count}
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(filtered_events).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["scope_id", "day", "reason"],
        set_={"events": filtered_events.c.events + statement.excluded.events},
    )
    with engine.begin() as connection:
        connection.execute(statement)


def filtered_totals(engine: Engine, scope_id: str, first: date, last: date) -> dict[str, int]:
    """Dropped events of ``scope_id`` per reason over the days ``first`` to ``last`` inclusive."""
    query = (
        select(filtered_events.c.reason, func.sum(filtered_events.c.events))
        .where(
            filtered_events.c.scope_id == scope_id,
            filtered_events.c.day >= first.isoformat(),
            filtered_events.c.day <= last.isoformat(),
        )
        .group_by(filtered_events.c.reason)
    )
    totals = dict.fromkeys(REASONS, 0)
    with engine.connect() as connection:
        for reason, total in connection.execute(query):
            totals[str(reason)] = int(total or 0)
    return totals
