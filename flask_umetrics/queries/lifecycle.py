"""Lifecycle: per period, the active persons split into new, returning and resurrecting, and
the persons who went dormant. PostHog's definitions (docs/lifecycle-stickiness.md):

- *Active* in period ``P``: did the event in ``P`` (by default any active event), report
  filters applied.
- **new**: active in ``P``, and ``P`` holds the person's first event of any kind (any name,
  active or not, report filters not applied: when the person appeared; PostHog uses the
  person's creation time).
- **returning**: active in ``P`` and in ``P - 1``, not new.
- **resurrecting**: active in ``P``, not in ``P - 1``, not new.
- **dormant**: active in ``P - 1``, not in ``P``. A positive count (PostHog answers it negated).

So ``new + returning + resurrecting`` are the persons active in ``P``. Periods are the calendar
buckets of the range in the scope's time zone (``buckets.py``); the period before the first one
is read too, so the first period has returning and dormant persons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

from sqlalchemy import BigInteger, and_, case, func, literal, select
from sqlalchemy.sql import ColumnElement, Select, Subquery

from ..db.tables import events
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from ..events.validation import to_micros
from .buckets import INTERVALS, Buckets, floor_to
from .compare import check_compare, previous_context
from .connection import report_connection
from .context import Count, ReportContext
from .persons import PersonSource
from .sql import person_events

STATUSES: tuple[str, ...] = ("new", "returning", "resurrecting", "dormant")


@dataclass(frozen=True)
class LifecyclePeriod:
    time: str
    new: Count
    returning: Count
    resurrecting: Count
    dormant: Count
    active: Count  # new + returning + resurrecting


@dataclass(frozen=True)
class LifecycleResult:
    interval: str
    periods: list[LifecyclePeriod]
    event: str | None = None
    sampled: float | None = None
    #: With ``compare="previous"``: this report over the previous range (``compare.py``).
    previous: LifecycleResult | None = None


def with_period_before(ctx: ReportContext, interval: str) -> Buckets:
    """The buckets of the range preceded by one more: index 0 is the period before it."""
    first = ctx.buckets(interval).starts[0]
    before = floor_to(
        first.astimezone(timezone.utc) - timedelta(microseconds=1), interval, ctx.zone
    )
    return ctx.buckets(interval, date_from=before)


def lifecycle(
    ctx: ReportContext,
    *,
    event: str | None = None,
    interval: str = "day",
    compare: str | None = None,
) -> LifecycleResult:
    """One entry per period of the range (every period present, zero-filled)."""
    check_compare(compare)
    if interval not in INTERVALS:
        raise ValidationError("interval", f"must be one of {', '.join(INTERVALS)}")
    buckets = with_period_before(ctx, interval)
    if is_clickhouse():
        from ..engines.clickhouse.lifecycle import cells as clickhouse_cells

        found = clickhouse_cells(ctx, buckets, event)
    else:
        with report_connection() as connection:
            found = {
                int(row.period): (int(row.new), int(row.ret), int(row.res), int(row.gone))
                for row in connection.execute(_cells(ctx, buckets, event))
            }
    periods = []
    for index, label in enumerate(buckets.labels()[1:], start=1):
        new, returning, resurrecting, _ = found.get(index, (0, 0, 0, 0))
        dormant = found.get(index - 1, (0, 0, 0, 0))[3]  # went dormant after index - 1
        periods.append(
            LifecyclePeriod(
                label,
                ctx.scale(new),
                ctx.scale(returning),
                ctx.scale(resurrecting),
                ctx.scale(dormant),
                ctx.scale(new + returning + resurrecting),
            )
        )
    previous = None
    if compare == "previous":
        previous = lifecycle(previous_context(ctx, interval), event=event, interval=interval)
    return LifecycleResult(interval, periods, event, ctx.sample, previous)


def _flagged(ctx: ReportContext, buckets: Buckets, event: str | None) -> Subquery:
    """One row per (person, period) of all the person's events up to the end of the range
    (older ones in period -1), "active" flagged; a window over each person's periods gives their
    first period and whether they were active one period before and after."""
    chosen = events.c.active.is_(True) if event is None else events.c.event == event
    doing = and_(chosen, events.c.ts >= buckets.start_us, *ctx.event_filters())
    base = person_events(ctx.scope_id).where(events.c.ts < buckets.end_us)
    person_id = base.selected_columns.person_id
    period = buckets.index(events.c.ts)
    activity = (
        base.where(*ctx.sampled(person_id))
        .with_only_columns(person_id, period.label("period"), func.max(_flag(doing)).label("act"))
        .group_by(person_id, period)
        .subquery("activity")
    )
    person, at = activity.c.person_id, activity.c.period

    def around(offset: int) -> ColumnElement[Any]:
        near = func.max(activity.c.act).over(
            partition_by=person, order_by=at, range_=(offset, offset)
        )
        return func.coalesce(near, 0)

    return select(
        person.label("person_id"),
        at.label("period"),
        activity.c.act,
        func.min(at).over(partition_by=person).label("first"),
        around(-1).label("before"),
        around(1).label("after"),
    ).subquery("flagged")


def _cells(ctx: ReportContext, buckets: Buckets, event: str | None) -> Select[Any]:
    """Per period index: ``new``, ``ret``, ``res`` of the persons active in it, and ``gone``:
    those active in it but not in the next (dormant one period later)."""
    f = _flagged(ctx, buckets, event).c
    shown = and_(f.act == 1, f.period >= 1)
    later = and_(shown, f.period != f.first)
    last = len(buckets.starts) - 1
    return select(
        f.period,
        func.sum(_flag(and_(shown, f.period == f.first))).label("new"),
        func.sum(_flag(and_(later, f.before == 1))).label("ret"),
        func.sum(_flag(and_(later, f.before == 0))).label("res"),
        func.sum(_flag(and_(f.act == 1, f.period >= 0, f.period < last, f.after == 0))).label(
            "gone"
        ),
    ).group_by(f.period)


def lifecycle_persons(
    ctx: ReportContext,
    *,
    time: str,
    status: str,
    event: str | None = None,
    interval: str = "day",
) -> PersonSource:
    """The persons behind bar ``status`` of period ``time`` (its start as the report labels
    it): the rows of the report's own per-(person, period) query that the bar counts. ``at``:
    the period's start (dormant persons qualify by not coming back in it)."""
    if interval not in INTERVALS:
        raise ValidationError("interval", f"must be one of {', '.join(INTERVALS)}")
    if status not in STATUSES:
        raise ValidationError("status", f"must be one of {', '.join(STATUSES)}")
    buckets = with_period_before(ctx, interval)
    labels = buckets.labels()
    if time not in labels[1:]:
        raise ValidationError("time", "must be the start of a period the report shows")
    index = labels.index(time)
    start = to_micros(buckets.starts[index])
    if is_clickhouse():
        from ..engines.clickhouse.lifecycle import persons_sql

        return PersonSource.clickhouse(*persons_sql(ctx, buckets, event, index, status, start))
    f = _flagged(ctx, buckets, event).c
    if status == "dormant":  # active in the period before, not in this one
        picked = and_(f.period == index - 1, f.act == 1, f.after == 0)
    else:
        picked = and_(f.period == index, f.act == 1)
        if status == "new":
            picked = and_(picked, f.period == f.first)
        else:
            was = 1 if status == "returning" else 0
            picked = and_(picked, f.period != f.first, f.before == was)
    return PersonSource.sql(
        select(f.person_id, literal(start, BigInteger).label("at")).where(picked)
    )


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)
