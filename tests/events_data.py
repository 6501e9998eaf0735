"""Helpers to build hand-made event sets whose report answers are known by construction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from flask import Flask

from flask_umetrics.events.ingest import ingest_events


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
