"""Active users: distinct persons with at least one active event; DAU / WAU / MAU series.

``DAU(d)`` counts persons active on day ``d``; ``WAU(d)`` in the 7 days ending on ``d``
(inclusive); ``MAU(d)`` in the 30 days ending on ``d``. Days are calendar days in
``UMETRICS_TIMEZONE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, func, select

from ..db.tables import events
from ..errors import ValidationError
from ..events.validation import to_micros
from .buckets import Buckets
from .connection import report_connection
from .context import ReportContext
from .sql import person_events
from .tables import index_table

WINDOWS = {"dau": 1, "wau": 7, "mau": 30}


@dataclass(frozen=True)
class ActiveCount:
    count: float
    sampled: float | None = None


@dataclass(frozen=True)
class ActivePoint:
    time: str
    value: float


@dataclass(frozen=True)
class ActiveSeries:
    series: list[ActivePoint]
    window: str
    sampled: float | None = None


def active_users(ctx: ReportContext) -> ActiveCount:
    rows = ctx.rows(
        person_events(ctx.scope_id).where(
            *ctx.in_range(), events.c.active.is_(True), *ctx.event_filters()
        )
    )
    query = select(func.count(rows.c.person_id.distinct()))
    with report_connection() as connection:
        count = connection.execute(query).scalar_one()
    return ActiveCount(ctx.scale(count), ctx.sample)


def active_user_series(ctx: ReportContext, *, window: str = "dau") -> ActiveSeries:
    """One value per day of the range."""
    if window not in WINDOWS:
        raise ValidationError("series", f"must be one of {', '.join(WINDOWS)}")
    days = WINDOWS[window]
    shown = Buckets.covering(ctx.date_from, ctx.date_to, "day", ctx.zone)
    lead = days - 1
    reach = Buckets.covering(
        shown.starts[0] - timedelta(days=lead) if shown.starts else ctx.date_from,
        ctx.date_to,
        "day",
        ctx.zone,
    )
    offset = len(reach.starts) - len(shown.starts)
    person_days = person_events(ctx.scope_id).where(
        events.c.ts >= reach.start_us,
        events.c.ts < to_micros(reach.end),
        events.c.active.is_(True),
        *ctx.event_filters(),
    )
    person_days = person_days.where(*ctx.sampled(person_days.selected_columns.person_id))
    activity = (
        person_days.with_only_columns(
            person_days.selected_columns.person_id, reach.index(events.c.ts).label("day")
        )
        .distinct()
        .subquery("activity")
    )
    day = index_table(len(shown.starts), "shown")
    query = (
        select(day.c.idx, func.count(activity.c.person_id.distinct()).label("n"))
        .select_from(day)
        .join(
            activity,
            and_(
                activity.c.day <= day.c.idx + offset,
                activity.c.day >= day.c.idx + offset - lead,
            ),
        )
        .group_by(day.c.idx)
    )
    with report_connection() as connection:
        counts = {row.idx: row.n for row in connection.execute(query)}
    series = [
        ActivePoint(label, ctx.scale(counts.get(i, 0))) for i, label in enumerate(shown.labels())
    ]
    return ActiveSeries(series, window, ctx.sample)
