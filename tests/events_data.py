"""Helpers to build hand-made event sets whose report answers are known by construction."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, NamedTuple

from flask import Flask
from sqlalchemy import select

from flask_umetrics.db.tables import events
from flask_umetrics.events.ingest import ingest_events
from flask_umetrics.state import current_state


def at(text: str) -> datetime:
    """``2026-03-01T10:00`` (UTC unless an offset is given) as an aware datetime."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def load(app: Flask, rows: Iterable[tuple[Any, ...]], scope_id: str = "default") -> int:
    """Store ``(distinct_id, event, when[, properties[, active[, session_id]]])`` rows."""
    batch = []
    for index, row in enumerate(rows):
        distinct_id, event, when, *rest = row
        item: dict[str, Any] = {
            "distinct_id": distinct_id,
            "event": event,
            "timestamp": at(when).isoformat() if isinstance(when, str) else when.isoformat(),
            "uuid": f"{scope_id}-{index}-{distinct_id}-{event}-{when}",
        }
        if len(rest) > 0 and rest[0] is not None:
            item["properties"] = rest[0]
        if len(rest) > 1 and rest[1] is not None:
            item["active"] = rest[1]
        if len(rest) > 2 and rest[2] is not None:
            item["session_id"] = rest[2]
        batch.append(item)
    with app.app_context():
        result = ingest_events(batch, scope_id=scope_id, any_age=True)
    assert not result.rejected, result.rejected
    return result.accepted


def clear_events(app: Flask) -> None:
    """Remove every event, person and distinct id (between hypothesis examples), from the SQL
    database and, on a ClickHouse event store, from ClickHouse too."""
    from sqlalchemy import delete

    from flask_umetrics.db.tables import events, person_distinct_ids, persons
    from flask_umetrics.state import current_state

    with app.app_context():
        state = current_state()
        with state.engine.begin() as connection:
            for table in (events, person_distinct_ids, persons):
                connection.execute(delete(table))
        if state.event_store.name == "clickhouse":
            from flask_umetrics.engines.clickhouse.schema import DISTINCT_IDS, EVENTS, PERSONS

            client = state.event_store.client  # type: ignore[attr-defined]
            for name in (EVENTS, DISTINCT_IDS, PERSONS):
                client.command(f"TRUNCATE TABLE {name}")


class StoredEvent(NamedTuple):
    """One stored event as a test reads it back, whichever store holds it."""

    id: int  # events.id in SQL; the ingestion ``seq`` on ClickHouse (orders ties alike)
    scope_id: str
    uuid: str | None
    event: str
    distinct_id: str
    ts: int  # microseconds since the epoch, UTC
    session_id: str | None
    active: bool
    properties: dict[str, Any]


def stored_events(scope_id: str | None = None) -> list[StoredEvent]:
    """Every stored event (of ``scope_id``, or of all scopes) in (ts, id) order, read from the
    store that holds events: the SQL table, or ClickHouse on a ClickHouse event store. Needs an
    app context. The one place tests read raw events (reports are read through their API)."""
    state = current_state()
    if state.event_store.name == "clickhouse":
        result = state.event_store.client.query(  # type: ignore[attr-defined]
            "SELECT seq, scope_id, uuid, event, distinct_id, toUnixTimestamp64Micro(ts), "
            "session_id, active, properties FROM umetrics_events "
            "WHERE {scope:String} = '' OR scope_id = {scope:String} ORDER BY ts, seq",
            parameters={"scope": scope_id or ""},
        )
        return [
            StoredEvent(*row[:5], int(row[5]), row[6], bool(row[7]), json.loads(row[8] or "{}"))
            for row in result.result_rows
        ]
    query = select(
        events.c.id,
        events.c.scope_id,
        events.c.uuid,
        events.c.event,
        events.c.distinct_id,
        events.c.ts,
        events.c.session_id,
        events.c.active,
        events.c.properties,
    ).order_by(events.c.ts, events.c.id)
    if scope_id is not None:
        query = query.where(events.c.scope_id == scope_id)
    with state.engine.connect() as connection:
        return [StoredEvent(*row[:8], row[8] or {}) for row in connection.execute(query)]
