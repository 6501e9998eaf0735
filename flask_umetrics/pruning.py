"""Retention pruning: delete rows older than their configured age, in bounded batches."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, delete, select, update

from .db.tables import (
    collector_runs,
    events,
    exposures,
    job_runs,
    snapshot_runs,
    stat_readings,
)
from .db.types import utcnow
from .events.validation import to_micros
from .state import current_state

logger = logging.getLogger("flask_umetrics")


def _detach_snapshots(connection: Connection, snapshot_ids: list[int]) -> None:
    """Delete the snapshots' collector runs and unlink their readings.

    Done explicitly: a host's SQLite engine may not enforce foreign keys (no cascade there).
    """
    connection.execute(delete(collector_runs).where(collector_runs.c.snapshot_id.in_(snapshot_ids)))
    connection.execute(
        update(stat_readings)
        .where(stat_readings.c.snapshot_id.in_(snapshot_ids))
        .values(snapshot_id=None)
    )


def _as_datetime(cutoff: datetime) -> Any:
    return cutoff


def _as_micros(cutoff: datetime) -> Any:
    return to_micros(cutoff)


@dataclass(frozen=True)
class PruneTarget:
    """A table whose rows expire ``config_key`` days after their ``time_column``.

    ``to_value`` turns the cutoff into the column's type (events keep µs since the epoch).
    """

    name: str
    table: Table
    time_column: str
    config_key: str
    delete_dependents: Callable[[Connection, list[int]], None] | None = None
    to_value: Callable[[datetime], Any] = _as_datetime


#: Every table with a retention age. Later features append their tables here.
PRUNE_TARGETS: list[PruneTarget] = [
    PruneTarget("events", events, "ts", "UMETRICS_RETENTION_EVENTS_DAYS", to_value=_as_micros),
    PruneTarget(
        "exposures", exposures, "ts", "UMETRICS_RETENTION_EXPOSURES_DAYS", to_value=_as_micros
    ),
    PruneTarget(
        "stat_readings", stat_readings, "captured_at", "UMETRICS_RETENTION_STAT_READINGS_DAYS"
    ),
    PruneTarget(
        "snapshot_runs",
        snapshot_runs,
        "captured_at",
        "UMETRICS_RETENTION_COLLECTOR_RUNS_DAYS",
        _detach_snapshots,
    ),
    PruneTarget("job_runs", job_runs, "started_at", "UMETRICS_RETENTION_JOB_RUNS_DAYS"),
]


def prune(
    *, now: datetime | None = None, progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Delete expired rows of every target; returns how many rows each lost.

    Each batch is its own transaction, so a long prune never holds locks for long. Events in a
    ClickHouse store are not pruned yet (left out of the result, with a warning).
    """
    state = current_state()
    now = now or utcnow()
    batch_size = state.settings["UMETRICS_PRUNE_BATCH_SIZE"]
    deleted: dict[str, int] = {}
    for target in PRUNE_TARGETS:
        days = state.settings[target.config_key]
        if days == 0:
            continue
        if target.table is events and state.event_store.name != "sql":
            logger.warning(
                "flask-umetrics: events in the %s event store are not pruned yet "
                "(UMETRICS_RETENTION_EVENTS_DAYS is not applied there; see docs/clickhouse.md)",
                state.event_store.name,
            )
            continue
        cutoff = now - timedelta(days=days)
        id_column = target.table.c.id
        expired = (
            select(id_column)
            .where(target.table.c[target.time_column] < target.to_value(cutoff))
            .order_by(id_column)
            .limit(batch_size)
        )
        total = 0
        while True:
            with state.engine.begin() as connection:
                ids = list(connection.execute(expired).scalars())
                if not ids:
                    break
                if target.delete_dependents is not None:
                    target.delete_dependents(connection, ids)
                connection.execute(delete(target.table).where(id_column.in_(ids)))
            total += len(ids)
            if progress is not None:
                progress(target.name, total)
            if len(ids) < batch_size:
                break
        deleted[target.name] = total
        if total:
            logger.info("flask-umetrics: pruned %d %s older than %s", total, target.name, cutoff)
    return deleted
