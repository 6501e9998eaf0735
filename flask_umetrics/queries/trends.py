"""Volume and trends: a number per calendar bucket, every bucket present (zero-filled).

``math``: ``total`` events, ``unique_persons``, or ``sum|avg|min|max`` of a numeric property;
optional ``breakdown`` by an event property into its top ``breakdown_limit`` values plus
``$other``. Events without the breakdown property form the ``null`` group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import case, func, literal, or_, select, true
from sqlalchemy.sql import ColumnElement

from ..db.tables import events
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from ..events.validation import to_micros
from .buckets import INTERVALS, Buckets
from .connection import report_connection
from .context import Count, ReportContext
from .persons import PersonSource
from .sql import by_codepoint, events_of, person_events, prop_number, prop_text

Math = Literal["total", "unique_persons", "sum", "avg", "min", "max"]
MATHS: tuple[str, ...] = ("total", "unique_persons", "sum", "avg", "min", "max")
OTHER = "$other"
MAX_BREAKDOWN_LIMIT = 100


@dataclass(frozen=True)
class Point:
    time: str
    value: Count  # an int for exact counts; a float for averages, min/max and samples


@dataclass(frozen=True)
class TrendSeries:
    breakdown_value: str | None
    series: list[Point]
    total: Count | None = None  # sum over buckets, for additive maths (total, sum)


@dataclass(frozen=True)
class TrendsResult:
    interval: str
    math: str
    results: list[TrendSeries]
    property: str | None = None
    breakdown: str | None = None
    sampled: float | None = None


def _aggregate(math: str, prop: str | None, rows: Any) -> ColumnElement[Any]:
    if math == "total":
        return func.count()
    if math == "unique_persons":
        return func.count(rows.c.person_id.distinct())
    if prop is None:
        raise ValidationError("property", f"math '{math}' needs a numeric property")
    number = rows.c.number
    if math == "sum":
        return func.sum(number)
    if math == "avg":
        return func.avg(number)
    return func.min(number) if math == "min" else func.max(number)


def trends(
    ctx: ReportContext,
    *,
    event: str | None = None,
    interval: str = "day",
    math: str = "total",
    property: str | None = None,  # the numeric property of sum/avg/min/max
    breakdown: str | None = None,
    breakdown_limit: int = 10,
) -> TrendsResult:
    """One series per breakdown value (one series without a breakdown)."""
    if interval not in INTERVALS:
        raise ValidationError("interval", f"must be one of {', '.join(INTERVALS)}")
    if math not in MATHS:
        raise ValidationError("math", f"must be one of {', '.join(MATHS)}")
    if not 1 <= breakdown_limit <= MAX_BREAKDOWN_LIMIT:
        raise ValidationError("breakdown_limit", f"must be between 1 and {MAX_BREAKDOWN_LIMIT}")
    if math not in {"total", "unique_persons"} and property is None:
        raise ValidationError("property", f"math '{math}' needs a numeric property")
    buckets = ctx.buckets(interval)
    if breakdown is not None:  # the top values and "$other": one series each
        ctx.check_cells(len(buckets.starts) * (breakdown_limit + 1), "breakdown_limit", "points")
    if is_clickhouse():
        from ..engines.clickhouse.trends import cells as clickhouse_cells

        top, cells = clickhouse_cells(
            ctx,
            buckets,
            event=event,
            math=math,
            property=property,
            breakdown=breakdown,
            breakdown_limit=breakdown_limit,
            other=OTHER,
        )
    else:
        top, cells = _sql_cells(ctx, buckets, event, math, property, breakdown, breakdown_limit)
    groups = list(top) + ([OTHER] if any(g == OTHER for g, _ in cells) else [])
    scaled = math in {"total", "unique_persons", "sum"}
    additive = math in {"total", "sum"}
    labels = buckets.labels()
    results = []
    for value in groups:
        series = []
        for index, label in enumerate(labels):
            raw = cells.get((value, index))
            cell = 0.0 if raw is None else float(raw)
            series.append(Point(label, ctx.scale(cell) if scaled else cell))
        total = sum(point.value for point in series) if additive else None
        results.append(TrendSeries(value, series, total))
    return TrendsResult(interval, math, results, property, breakdown, ctx.sample)


def _sql_cells(
    ctx: ReportContext,
    buckets: Buckets,
    event: str | None,
    math: str,
    property: str | None,
    breakdown: str | None,
    breakdown_limit: int,
) -> tuple[list[str | None], dict[tuple[Any, int], Any]]:
    """The SQL engine's ``(top breakdown values, {(group, bucket): value})``."""
    # Persons are only needed to count them or to limit the report to some of them; plain
    # event counts and sums skip the join with the distinct-id map.
    needs_persons = math == "unique_persons" or ctx.sample is not None or ctx.segment is not None
    base = person_events(ctx.scope_id) if needs_persons else events_of(ctx.scope_id)
    base = base.where(events.c.ts >= ctx.from_us, events.c.ts < ctx.to_us, *ctx.event_filters())
    if event is not None:
        base = base.where(events.c.event == event)
    group: ColumnElement[Any] = literal(None)
    if breakdown is not None:
        group = prop_text(events.c.properties, breakdown)
    number = prop_number(events.c.properties, property) if property else literal(None)
    query = base.add_columns(
        buckets.index(events.c.ts).label("bucket"), group.label("grp"), number.label("number")
    )
    rows = ctx.rows(query) if needs_persons else query.subquery("rows")
    with report_connection() as connection:
        top: list[str | None] = [None]
        if breakdown is not None:
            top = list(
                connection.execute(
                    select(rows.c.grp)
                    .group_by(rows.c.grp)
                    .order_by(func.count().desc(), by_codepoint(rows.c.grp).asc().nulls_last())
                    .limit(breakdown_limit)
                ).scalars()
            )
        named = [value for value in top if value is not None]
        grp: ColumnElement[Any] = rows.c.grp
        if breakdown is not None:
            # Values outside the top N (and a missing value, unless it is in the top N) -> other.
            keep_missing = [(rows.c.grp.is_(None), literal(None))] if None in top else []
            grp = case((rows.c.grp.in_(named), rows.c.grp), *keep_missing, else_=literal(OTHER))
        query = select(
            grp.label("grp"), rows.c.bucket, _aggregate(math, property, rows).label("value")
        ).group_by(grp, rows.c.bucket)
        cells = {(row.grp, row.bucket): row.value for row in connection.execute(query)}
    return top, cells


@dataclass(frozen=True)
class VolumePoint:
    time: str
    count: int


@dataclass(frozen=True)
class VolumeResult:
    interval: str
    series: list[VolumePoint]
    sampled: float | None = None


def volume(ctx: ReportContext, *, event: str | None = None, interval: str = "day") -> VolumeResult:
    """Events per bucket (every bucket present, zero-filled)."""
    result = trends(ctx, event=event, interval=interval, math="total")
    series = [VolumePoint(p.time, round(p.value)) for p in result.results[0].series]
    return VolumeResult(interval, series, ctx.sample)


def trend_persons(
    ctx: ReportContext,
    *,
    time: str,
    event: str | None = None,
    interval: str = "day",
    breakdown: str | None = None,
    breakdown_limit: int = 10,
    breakdown_value: str | None = None,
) -> PersonSource:
    """The persons behind point ``time`` (a bucket start as the report labels it) of the
    series ``breakdown_value`` (``None``: the missing-value group; ``$other``: every value
    outside the report's top ``breakdown_limit``): the persons with an event counted there —
    the ``unique_persons`` count of that point. ``at``: their first such event."""
    if interval not in INTERVALS:
        raise ValidationError("interval", f"must be one of {', '.join(INTERVALS)}")
    if not 1 <= breakdown_limit <= MAX_BREAKDOWN_LIMIT:
        raise ValidationError("breakdown_limit", f"must be between 1 and {MAX_BREAKDOWN_LIMIT}")
    if breakdown is None and breakdown_value is not None:
        raise ValidationError("breakdown_value", "needs a breakdown")
    buckets = ctx.buckets(interval)
    labels = buckets.labels()
    if time not in labels:
        raise ValidationError("time", "must be the start of a point the report shows")
    index = labels.index(time)
    bounds = [to_micros(start) for start in buckets.starts] + [buckets.end_us]
    span = (max(bounds[index], ctx.from_us), min(bounds[index + 1], ctx.to_us))
    top: list[str | None] | None = None
    if breakdown is not None and breakdown_value == OTHER:  # the report's own top values
        shown = trends(
            ctx,
            event=event,
            interval=interval,
            breakdown=breakdown,
            breakdown_limit=breakdown_limit,
        )
        top = [
            series.breakdown_value for series in shown.results if series.breakdown_value != OTHER
        ]
    if is_clickhouse():
        from ..engines.clickhouse.trends import persons_sql

        return PersonSource.clickhouse(
            *persons_sql(ctx, span, event, breakdown, breakdown_value, top)
        )
    base = person_events(ctx.scope_id).where(
        events.c.ts >= span[0], events.c.ts < span[1], *ctx.event_filters()
    )
    if event is not None:
        base = base.where(events.c.event == event)
    if breakdown is not None:
        value = prop_text(events.c.properties, breakdown)
        if top is not None:
            named = [v for v in top if v is not None]
            base = base.where(or_(value.is_(None), value.not_in(named)) if named else true())
            if None in top:
                base = base.where(value.is_not(None))
        elif breakdown_value is None:
            base = base.where(value.is_(None))
        else:
            base = base.where(value == breakdown_value)
    rows = ctx.rows(base)
    return PersonSource.sql(
        select(rows.c.person_id, func.min(rows.c.ts).label("at")).group_by(rows.c.person_id)
    )
