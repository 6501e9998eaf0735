"""GA4 daily figures into the stat store, so GA4 and first-party numbers sit side by side.

A sync reads the last ``UMETRICS_GA4_SYNC_DAYS`` complete days (GA4 keeps revising recent days)
and writes one reading per day and metric (``ga4.sessions``, ``ga4.active_users``, ...), stamped
with the day's midnight in the property's reporting time zone (GA4 cuts days there; stored at
link time, ``UMETRICS_TIMEZONE`` for a property linked before) and source ``ga4``. Re-reading a
day replaces its readings, so series never hold duplicates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select

from ..db.tables import ga4_connections, stat_readings
from ..db.types import utcnow
from ..errors import APIError
from ..state import current_state, resolve_scope

#: Stat metric key -> GA4 Data API metric.
SYNCED_METRICS: dict[str, str] = {
    "ga4.sessions": "sessions",
    "ga4.active_users": "activeUsers",
    "ga4.new_users": "newUsers",
    "ga4.page_views": "screenPageViews",
    "ga4.key_events": "keyEvents",
}


@dataclass(frozen=True)
class SyncResult:
    """What one scope's sync wrote (or the error that stopped it)."""

    scope_id: str
    date_from: str | None = None
    date_to: str | None = None
    days: int = 0
    readings: int = 0
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope_id": self.scope_id,
            "date_from": self.date_from,
            "date_to": self.date_to,
            "days": self.days,
            "readings": self.readings,
            "error": self.error,
            "metrics": self.metrics,
        }


def _day_start(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(dt.timezone.utc)


def sync_scope(
    scope_id: str | None = None, *, days: int | None = None, now: dt.datetime | None = None
) -> SyncResult:
    """Pull the daily figures of the scope's linked property; errors are recorded, not raised."""
    from google.analytics.data_v1beta import types as data

    from .clients import call_options, data_client, google_errors
    from .connections import load_credentials, mark_sync, require_connection
    from .reports import report_zone

    state = current_state()
    settings = state.settings
    scope = resolve_scope(scope_id)
    now = now or utcnow()
    connection = require_connection(scope)
    zone = report_zone(settings, connection.time_zone)
    count = days or int(settings["UMETRICS_GA4_SYNC_DAYS"])
    last = now.astimezone(zone).date() - dt.timedelta(days=1)
    first = last - dt.timedelta(days=count - 1)
    if connection.property_id is None:
        raise APIError(409, "ga4_not_linked", "Link or provision a GA4 property first.")
    request = data.RunReportRequest(
        property=f"properties/{connection.property_id}",
        date_ranges=[data.DateRange(start_date=first.isoformat(), end_date=last.isoformat())],
        dimensions=[data.Dimension(name="date")],
        metrics=[data.Metric(name=name) for name in SYNCED_METRICS.values()],
        order_bys=[data.OrderBy(dimension=data.OrderBy.DimensionOrderBy(dimension_name="date"))],
        keep_empty_rows=True,
        return_property_quota=True,
    )
    try:
        credentials = load_credentials(scope)
        with google_errors(), data_client(credentials, settings) as client:
            answer = client.run_report(request=request, **call_options(settings))
    except APIError as exc:
        mark_sync(scope, at=now, error=exc.message)
        return SyncResult(scope, first.isoformat(), last.isoformat(), error=exc.message)
    headers = [h.name for h in answer.metric_headers]
    readings: list[dict[str, Any]] = []
    totals: dict[str, float] = dict.fromkeys(SYNCED_METRICS, 0.0)
    by_metric = {ga4: key for key, ga4 in SYNCED_METRICS.items()}
    seen_days = set()
    for row in answer.rows:
        text = row.dimension_values[0].value
        day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        seen_days.add(day)
        for name, value in zip(headers, row.metric_values, strict=True):
            key = by_metric[name]
            number = float(value.value)
            totals[key] += number
            readings.append(
                {
                    "scope_id": scope,
                    "metric_key": key,
                    "value": number,
                    "captured_at": _day_start(day, zone),
                    "source": "ga4",
                }
            )
    with state.engine.begin() as db:
        stamps = sorted({r["captured_at"] for r in readings})
        if stamps:
            db.execute(
                delete(stat_readings).where(
                    stat_readings.c.scope_id == scope,
                    stat_readings.c.source == "ga4",
                    stat_readings.c.metric_key.in_(list(SYNCED_METRICS)),
                    stat_readings.c.captured_at.in_(stamps),
                )
            )
            db.execute(insert(stat_readings), readings)
    mark_sync(scope, at=now)
    return SyncResult(
        scope,
        first.isoformat(),
        last.isoformat(),
        days=len(seen_days),
        readings=len(readings),
        metrics=totals,
    )


def linked_scopes() -> list[str]:
    """Scopes with a GA4 property linked (what the scheduled sync visits)."""
    with current_state().engine.connect() as db:
        rows = db.execute(
            select(ga4_connections.c.scope_id)
            .where(ga4_connections.c.property_id.is_not(None))
            .order_by(ga4_connections.c.scope_id)
        )
        return [row.scope_id for row in rows]


def sync_all(*, now: dt.datetime | None = None) -> list[SyncResult]:
    """Sync every linked scope; one scope's failure never stops the others."""
    return [sync_scope(scope, now=now) for scope in linked_scopes()]
