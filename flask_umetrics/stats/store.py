"""The stat store: append-only numeric readings per scope and metric."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select

from ..db.tables import stat_readings
from ..db.types import utcnow
from ..errors import ValidationError
from ..state import current_state, resolve_scope
from ..validation import as_utc, validate_metric_key, validate_number

SOURCES = ("python", "api", "cli", "collector", "ga4", "demo")


@dataclass(frozen=True)
class StatReading:
    """One reading: a value of ``metric_key`` in ``scope_id`` at ``captured_at`` (UTC)."""

    metric_key: str
    value: float
    captured_at: datetime
    scope_id: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric_key": self.metric_key,
            "value": self.value,
            "captured_at": self.captured_at.isoformat(),
            "scope_id": self.scope_id,
            "source": self.source,
        }


_COLUMNS = (
    stat_readings.c.metric_key,
    stat_readings.c.value,
    stat_readings.c.captured_at,
    stat_readings.c.scope_id,
    stat_readings.c.source,
)


def record_stat(
    metric_key: str,
    value: float,
    *,
    scope_id: str | None = None,
    captured_at: datetime | None = None,
    source: str = "python",
) -> StatReading:
    """Append one reading (``captured_at`` defaults to now) and return it."""
    key = validate_metric_key(metric_key)
    number = validate_number(value)
    scope = resolve_scope(scope_id)
    when = utcnow() if captured_at is None else as_utc(captured_at, "captured_at")
    if source not in SOURCES:
        raise ValidationError("source", f"must be one of {', '.join(SOURCES)}")
    with current_state().engine.begin() as connection:
        connection.execute(
            insert(stat_readings).values(
                scope_id=scope, metric_key=key, value=number, captured_at=when, source=source
            )
        )
    return StatReading(key, number, when, scope, source)


def get_latest_stat(metric_key: str, *, scope_id: str | None = None) -> StatReading | None:
    """The most recent reading of ``metric_key`` (the last inserted among equal times)."""
    series = get_stat_series(metric_key, scope_id=scope_id, limit=1)
    return series[0] if series else None


def get_stat_series(
    metric_key: str,
    *,
    scope_id: str | None = None,
    limit: int = 30,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[StatReading]:
    """The most recent ``limit`` readings in ``[since, until)``, in ascending time order.

    Readings with the same ``captured_at`` keep their insertion order.
    """
    key = validate_metric_key(metric_key)
    scope = resolve_scope(scope_id)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError("limit", "must be a positive integer")
    newest = (
        select(*_COLUMNS, stat_readings.c.id)
        .where(stat_readings.c.scope_id == scope, stat_readings.c.metric_key == key)
        .order_by(stat_readings.c.captured_at.desc(), stat_readings.c.id.desc())
        .limit(limit)
    )
    if since is not None:
        newest = newest.where(stat_readings.c.captured_at >= as_utc(since, "since"))
    if until is not None:
        newest = newest.where(stat_readings.c.captured_at < as_utc(until, "until"))
    recent = newest.subquery()
    query = select(*(recent.c[column.name] for column in _COLUMNS)).order_by(
        recent.c.captured_at, recent.c.id
    )
    with current_state().engine.connect() as connection:
        return [StatReading(*row) for row in connection.execute(query)]


def _ranked(metric_keys: list[str], scope_id: str | None) -> Any:
    """Readings of ``metric_keys`` numbered newest first within each key (``rank`` 1 = latest)."""
    keys = [validate_metric_key(key) for key in metric_keys]
    scope = resolve_scope(scope_id)
    rank = (
        func.row_number()
        .over(
            partition_by=stat_readings.c.metric_key,
            order_by=(stat_readings.c.captured_at.desc(), stat_readings.c.id.desc()),
        )
        .label("rank")
    )
    return (
        select(*_COLUMNS, stat_readings.c.id, rank)
        .where(stat_readings.c.scope_id == scope, stat_readings.c.metric_key.in_(keys))
        .subquery()
    )


def get_latest_stats(
    metric_keys: list[str], *, scope_id: str | None = None
) -> dict[str, StatReading]:
    """The latest reading of each of ``metric_keys`` in one query (missing keys are left out)."""
    if not metric_keys:
        return {}
    ranked = _ranked(metric_keys, scope_id)
    query = select(*(ranked.c[column.name] for column in _COLUMNS)).where(ranked.c.rank == 1)
    with current_state().engine.connect() as connection:
        return {row.metric_key: StatReading(*row) for row in connection.execute(query)}


def get_recent_stats(
    metric_keys: list[str], *, scope_id: str | None = None, limit: int = 30
) -> dict[str, list[StatReading]]:
    """The most recent ``limit`` readings of each of ``metric_keys``, oldest first, in one query
    (a dashboard's sparklines without a query per metric; missing keys are left out)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError("limit", "must be a positive integer")
    if not metric_keys:
        return {}
    ranked = _ranked(metric_keys, scope_id)
    query = (
        select(*(ranked.c[column.name] for column in _COLUMNS))
        .where(ranked.c.rank <= limit)
        .order_by(ranked.c.metric_key, ranked.c.captured_at, ranked.c.id)
    )
    series: dict[str, list[StatReading]] = {}
    with current_state().engine.connect() as connection:
        for row in connection.execute(query):
            series.setdefault(row.metric_key, []).append(StatReading(*row))
    return series
