"""Active users: distinct persons with at least one active event; DAU / WAU / MAU series.

``DAU(d)`` counts persons active on day ``d``; ``WAU(d)`` in the 7 days ending on ``d``
(inclusive); ``MAU(d)`` in the 30 days ending on ``d``. Days are calendar days in
``UMETRICS_TIMEZONE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, func, literal, or_, select, union_all

from ..db.tables import events
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from ..events.validation import to_micros
from .buckets import Buckets
from .connection import report_connection
from .context import Count, ReportContext
from .sql import person_events

WINDOWS = {"dau": 1, "wau": 7, "mau": 30}


@dataclass(frozen=True)
class ActiveCount:
    count: Count
    sampled: float | None = None


@dataclass(frozen=True)
class ActivePoint:
    time: str
    value: Count


@dataclass(frozen=True)
class ActiveSeries:
    series: list[ActivePoint]
    window: str
    sampled: float | None = None


def active_users(ctx: ReportContext) -> ActiveCount:
    if is_clickhouse():
        from ..engines.clickhouse import active as clickhouse

        return ActiveCount(ctx.scale(clickhouse.active_users(ctx)), ctx.sample)
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
    shown = ctx.buckets("day", field="date_from")
    lead = days - 1
    reach = ctx.buckets(
        "day",
        field="date_from",
        date_from=shown.starts[0] - timedelta(days=lead) if shown.starts else ctx.date_from,
    )
    offset = len(reach.starts) - len(shown.starts)
    if is_clickhouse():
        from ..engines.clickhouse import active as clickhouse

        per_day = clickhouse.active_counts(ctx, reach, days)
        counts = {i: per_day.get(i + offset, 0) for i in range(len(shown.starts))}
    else:
        counts = _sql_counts(ctx, reach, days, offset)
    series = [
        ActivePoint(label, ctx.scale(counts.get(i, 0))) for i, label in enumerate(shown.labels())
    ]
    return ActiveSeries(series, window, ctx.sample)


def _sql_counts(ctx: ReportContext, reach: Buckets, days: int, offset: int) -> dict[int, int]:
    """The SQL engine's ``{shown day index: active persons}``."""
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
    # A person active on day a counts on days a .. a + days - 1. Overlapping spans of one
    # person are merged into islands (a new island starts when the gap to the previous active
    # day is at least ``days``); each island adds +1 on its first day and -1 after its last,
    # and a running sum gives the count per day. No range join: O(active person-days).
    previous = func.lag(activity.c.day).over(
        partition_by=activity.c.person_id, order_by=activity.c.day
    )
    starts = case((or_(previous.is_(None), activity.c.day - previous >= days), 1), else_=0)
    marked = select(activity.c.person_id, activity.c.day, starts.label("is_start")).subquery(
        "marked"
    )
    island = (
        func.sum(marked.c.is_start)
        .over(partition_by=marked.c.person_id, order_by=marked.c.day, rows=(None, 0))
        .label("island")
    )
    numbered = select(marked.c.person_id, marked.c.day, island).subquery("numbered")
    spans = (
        select(
            func.min(numbered.c.day).label("first"),
            (func.max(numbered.c.day) + days).label("stop"),
        )
        .group_by(numbered.c.person_id, numbered.c.island)
        .subquery("spans")
    )
    deltas = union_all(
        select(spans.c.first.label("day"), literal(1).label("delta")),
        select(spans.c.stop.label("day"), literal(-1).label("delta")),
    ).subquery("deltas")
    query = select(deltas.c.day, func.sum(deltas.c.delta).label("change")).group_by(deltas.c.day)
    with report_connection() as connection:
        changes = {row.day: int(row.change) for row in connection.execute(query)}
    counts, running = {}, 0
    for reach_day in range(len(reach.starts)):
        running += changes.get(reach_day, 0)
        if reach_day >= offset:
            counts[reach_day - offset] = running
    return counts
