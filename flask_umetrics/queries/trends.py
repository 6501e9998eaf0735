"""Volume and trends: a number per calendar bucket, every bucket present (zero-filled).

``math``: ``total`` events, ``unique_persons``, ``unique_sessions``, ``per_person_avg`` (events
per person), or ``sum|avg|min|max|median|p75|p90|p95|p99`` of a numeric property (exact
percentiles, linear interpolation between closest ranks: ``percentiles.py``); ``cumulative``
turns the series of an additive math into running totals; optional ``breakdown`` by an event
property into its top ``breakdown_limit`` values plus ``$other``. Events without the breakdown
property form the ``null`` group. ``breakdown_type="person"`` reads the property from the
person's current properties instead (a merged person is one person with one value; a person
without it is in the ``null`` group); ``breakdown_type="segment"`` takes ``breakdown`` as a saved
segment's key and gives exactly two series, ``in`` and ``out`` (membership as
``segments.py`` defines it). ``compare="previous"`` adds the same report over the previous
range (``compare.py``) as ``previous``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from itertools import accumulate
from typing import Any, Literal, get_args

from sqlalchemy import Float, case, func, literal, literal_column, or_, select, true, union_all
from sqlalchemy.sql import ColumnElement, Select, Subquery

from ..db.tables import events, person_distinct_ids, persons
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from ..events.validation import to_micros
from .buckets import INTERVALS, Buckets
from .compare import check_compare, previous_context
from .connection import report_connection
from .context import Count, ReportContext
from .percentiles import PERCENTILES, percentile_cells
from .persons import PersonSource
from .segments import Segment, get_segment
from .sql import (
    OTHER,
    events_of,
    other_group,
    person_events,
    prop_number,
    prop_text,
    top_values,
)

Math = Literal[
    "total",
    "unique_persons",
    "unique_sessions",
    "per_person_avg",
    "sum",
    "avg",
    "min",
    "max",
    "median",
    "p75",
    "p90",
    "p95",
    "p99",
    "first_time",
    "dau",
    "wau",
    "mau",
]
MATHS: tuple[str, ...] = get_args(Math)
#: Maths of a numeric property.
PROPERTY_MATHS = frozenset({"sum", "avg", "min", "max", *PERCENTILES})
#: Maths whose values add up over buckets (a total, and ``cumulative`` running sums).
ADDITIVE = frozenset({"total", "sum", "first_time"})
#: Maths that count persons: they join the distinct-id map.
PERSON_MATHS = frozenset({"unique_persons", "per_person_avg", "first_time", "dau", "wau", "mau"})
#: Rolling active persons: on day ``d``, the persons who did the event in the ``n`` local days
#: ending with ``d`` (``dau`` is ``unique_persons``).
WINDOWS: dict[str, int] = {"wau": 7, "mau": 30}
MAX_BREAKDOWN_LIMIT = 100
#: What ``breakdown`` names: an event property, a person property, or a saved segment.
BREAKDOWN_TYPES = ("event", "person", "segment")
#: The two series of a segment breakdown: its members, and everyone else.
SEGMENT_GROUPS: list[str | None] = ["in", "out"]


@dataclass(frozen=True)
class Point:
    time: str
    value: Count  # an int for exact counts; a float for averages, min/max and samples


@dataclass(frozen=True)
class TrendSeries:
    breakdown_value: str | None
    series: list[Point]
    total: Count | None = None  # sum over buckets, for additive maths (total, sum)
    #: With several series (``trends_series.py``): the series' letter, or the formula.
    label: str | None = None


@dataclass(frozen=True)
class TrendsResult:
    interval: str
    math: str
    results: list[TrendSeries]
    property: str | None = None
    breakdown: str | None = None
    sampled: float | None = None
    #: With ``compare="previous"``: this report over the previous range, bucket ``i`` of its
    #: series aligned with bucket ``i`` here (its own ``time`` labels).
    previous: TrendsResult | None = None
    formula: str | None = None  # with several series: the formula of the results
    breakdown_type: str | None = None  # with a breakdown: event, person or segment


def _aggregate(math: str, prop: str | None, rows: Any) -> ColumnElement[Any]:
    if math in {"total", "first_time"}:  # first_time: one row per person
        return func.count()
    if math in {"unique_persons", "dau"}:
        return func.count(rows.c.person_id.distinct())
    if math == "unique_sessions":
        return func.count(rows.c.session.distinct())
    if math == "per_person_avg":
        return func.count().cast(Float) / func.count(rows.c.person_id.distinct())
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
    compare: str | None = None,
    cumulative: bool = False,
    breakdown_type: str = "event",
) -> TrendsResult:
    """One series per breakdown value (one series without a breakdown)."""
    check_compare(compare)
    segment = breakdown_segment(ctx, breakdown, breakdown_type)
    if cumulative and math not in ADDITIVE:
        raise ValidationError("cumulative", f"needs math {' or '.join(sorted(ADDITIVE))}")
    if interval not in INTERVALS:
        raise ValidationError("interval", f"must be one of {', '.join(INTERVALS)}")
    if math not in MATHS:
        raise ValidationError("math", f"must be one of {', '.join(MATHS)}")
    if not 1 <= breakdown_limit <= MAX_BREAKDOWN_LIMIT:
        raise ValidationError("breakdown_limit", f"must be between 1 and {MAX_BREAKDOWN_LIMIT}")
    if math in PROPERTY_MATHS and property is None:
        raise ValidationError("property", f"math '{math}' needs a numeric property")
    buckets = ctx.buckets(interval)
    if breakdown is not None:  # the top values and "$other": one series each
        ctx.check_cells(len(buckets.starts) * (breakdown_limit + 1), "breakdown_limit", "points")
    read = _read_buckets(ctx, buckets, math)
    if is_clickhouse():
        from ..engines.clickhouse.trends import cells as clickhouse_cells

        top, cells = clickhouse_cells(
            ctx,
            read,
            event=event,
            math=math,
            property=property,
            breakdown=breakdown,
            breakdown_limit=breakdown_limit,
            other=OTHER,
            window=WINDOWS.get(math),
            breakdown_type=breakdown_type,
            segment=segment,
        )
    else:
        top, cells = _sql_cells(
            ctx, read, event, math, property, breakdown, breakdown_limit, breakdown_type, segment
        )
    lead = len(read.starts) - len(buckets.starts)  # the days before the range wau/mau read
    if lead:
        cells = {(group, index - lead): value for (group, index), value in cells.items()}
    groups = list(top) + ([OTHER] if any(g == OTHER for g, _ in cells) else [])
    scaled = math in {"total", "unique_sessions", "sum", *PERSON_MATHS} - {"per_person_avg"}
    labels = buckets.labels()
    results = []
    for value in groups:
        series = []
        for index, label in enumerate(labels):
            raw = cells.get((value, index))
            cell = 0.0 if raw is None else float(raw)
            series.append(Point(label, ctx.scale(cell) if scaled else cell))
        total = sum(point.value for point in series) if math in ADDITIVE else None
        if cumulative:
            running = list(accumulate(point.value for point in series))
            series = [Point(point.time, sum_) for point, sum_ in zip(series, running, strict=True)]
        results.append(TrendSeries(value, series, total))
    previous = None
    if compare == "previous":
        previous = trends(
            previous_context(ctx, interval),
            event=event,
            interval=interval,
            math=math,
            property=property,
            breakdown=breakdown,
            breakdown_limit=breakdown_limit,
            cumulative=cumulative,
            breakdown_type=breakdown_type,
        )
    kind = None if breakdown is None else breakdown_type
    return TrendsResult(
        interval, math, results, property, breakdown, ctx.sample, previous, breakdown_type=kind
    )


def breakdown_segment(
    ctx: ReportContext, breakdown: str | None, breakdown_type: str
) -> Segment | None:
    """Check ``breakdown_type``; for ``segment``, the saved segment ``breakdown`` names."""
    if breakdown_type not in BREAKDOWN_TYPES:
        raise ValidationError("breakdown_type", f"must be one of {', '.join(BREAKDOWN_TYPES)}")
    if breakdown_type != "segment" or breakdown is None:
        return None
    found = get_segment(breakdown, scope_id=ctx.scope_id)
    if found is None:
        raise ValidationError("breakdown", f"no segment {breakdown!r} in scope {ctx.scope_id!r}")
    return found


def _breakdown_value(
    base: Select[Any], breakdown: str, breakdown_type: str, segment: Segment | None
) -> tuple[Select[Any], ColumnElement[Any]]:
    """``base`` (events, with the distinct-id map for person and segment breakdowns) and the
    breakdown value of each of its rows."""
    if breakdown_type == "person":  # the person's current property; no person row -> null
        joined = base.outerjoin(persons, persons.c.id == person_distinct_ids.c.person_id)
        return joined, prop_text(persons.c.properties, breakdown)
    if segment is not None:
        member = segment.condition(person_distinct_ids.c.person_id)
        return base, case((member, literal(SEGMENT_GROUPS[0])), else_=literal(SEGMENT_GROUPS[1]))
    return base, prop_text(events.c.properties, breakdown)


def _read_buckets(ctx: ReportContext, buckets: Buckets, math: str) -> Buckets:
    """The buckets to read: the range's, or for ``wau``/``mau`` (days only) the days before
    it too, so that its first day has its whole window."""
    days = WINDOWS.get(math)
    if days is None:
        return buckets
    if buckets.interval != "day":
        raise ValidationError("interval", f"math '{math}' needs interval day")
    return ctx.buckets("day", date_from=buckets.starts[0] - timedelta(days=days - 1))


def _sql_cells(
    ctx: ReportContext,
    buckets: Buckets,
    event: str | None,
    math: str,
    property: str | None,
    breakdown: str | None,
    breakdown_limit: int,
    breakdown_type: str = "event",
    segment: Segment | None = None,
) -> tuple[list[str | None], dict[tuple[Any, int], Any]]:
    """The SQL engine's ``(top breakdown values, {(group, bucket): value})``."""
    rows = _sql_rows(ctx, buckets, event, math, property, breakdown, breakdown_type, segment)
    with report_connection() as connection:
        top = _sql_top(connection, rows, breakdown, breakdown_limit, segment)
        grp: ColumnElement[Any] = rows.c.grp
        if breakdown is not None:
            grp = other_group(rows.c.grp, top)
        if math in PERCENTILES:
            query = percentile_cells(grp, rows, PERCENTILES[math])
        elif math in WINDOWS:
            query = _window_cells(grp, rows, WINDOWS[math], len(buckets.starts))
        else:
            query = select(
                grp.label("grp"), rows.c.bucket, _aggregate(math, property, rows).label("value")
            ).group_by(grp, rows.c.bucket)
        cells = {(row.grp, row.bucket): row.value for row in connection.execute(query)}
    return top, cells


def _sql_rows(
    ctx: ReportContext,
    buckets: Buckets,
    event: str | None,
    math: str,
    property: str | None,
    breakdown: str | None,
    breakdown_type: str,
    segment: Segment | None,
) -> Subquery:
    """The rows a SQL report aggregates: ``bucket``, ``grp`` (the breakdown value),
    ``number``, ``session`` and, when it reads persons, ``person_id``."""
    # Persons are only needed to count them, to limit the report to some of them or to break
    # down by them; plain event counts and sums skip the join with the distinct-id map.
    needs_persons = (
        math in PERSON_MATHS
        or ctx.sample is not None
        or ctx.segment is not None
        or (breakdown is not None and breakdown_type != "event")
    )
    base = person_events(ctx.scope_id) if needs_persons else events_of(ctx.scope_id)
    # wau/mau read whole days from the window before the range; first_time each person's
    # earlier events too, to find their first one.
    start = buckets.start_us if math in WINDOWS else ctx.from_us
    since = [] if math == "first_time" else [events.c.ts >= start]
    base = base.where(*since, events.c.ts < ctx.to_us, *ctx.event_filters())
    if event is not None:
        base = base.where(events.c.event == event)
    group: ColumnElement[Any] = literal(None)
    if breakdown is not None:
        base, group = _breakdown_value(base, breakdown, breakdown_type, segment)
    number = prop_number(events.c.properties, property) if property else literal(None)
    query = base.add_columns(
        buckets.index(events.c.ts).label("bucket"),
        group.label("grp"),
        number.label("number"),
        events.c.session_id.label("session"),
    )
    rows = ctx.rows(query) if needs_persons else query.subquery("rows")
    return _first_events(rows, ctx) if math == "first_time" else rows


def _sql_top(
    connection: Any,
    rows: Subquery,
    breakdown: str | None,
    breakdown_limit: int,
    segment: Segment | None,
) -> list[str | None]:
    """The groups of ``rows`` shown on their own: ``in``/``out`` of a segment, the top
    ``breakdown_limit`` values of a breakdown, the one missing value without."""
    if segment is not None:
        return list(SEGMENT_GROUPS)
    if breakdown is None:
        return [None]
    return top_values(connection, rows.c.grp, breakdown_limit)


def _shown_values(
    ctx: ReportContext,
    buckets: Buckets,
    event: str | None,
    breakdown: str,
    breakdown_limit: int,
    breakdown_type: str,
    segment: Segment | None,
) -> list[str | None]:
    """The breakdown values the ``total`` report of these options shows on their own (every
    series but ``$other``), ranked as :func:`trends` ranks them but without its cells."""
    if is_clickhouse():
        from ..engines.clickhouse.trends import breakdown_top

        top = breakdown_top(
            ctx,
            buckets,
            event=event,
            breakdown=breakdown,
            breakdown_limit=breakdown_limit,
            breakdown_type=breakdown_type,
            segment=segment,
        )
    else:
        rows = _sql_rows(ctx, buckets, event, "total", None, breakdown, breakdown_type, segment)
        with report_connection() as connection:
            top = _sql_top(connection, rows, breakdown, breakdown_limit, segment)
    # A value spelled "$other" joins the $other series in the report, so is not shown alone.
    return [value for value in top if value != OTHER]


def _window_cells(grp: ColumnElement[Any], rows: Subquery, days: int, count: int) -> Select[Any]:
    """Persons per (group, day) active on that day or the ``days - 1`` before: each distinct
    (group, day, person) is spread over the ``days`` days it counts for."""
    activity = (
        select(grp.label("grp"), rows.c.bucket.label("day"), rows.c.person_id)
        .distinct()
        .subquery("activity")
    )
    each: list[Select[Any]] = [select(literal_column(str(j)).label("j")) for j in range(days)]
    ahead = union_all(*each).subquery("offsets")
    target = activity.c.day + ahead.c.j
    spread = (
        select(activity.c.grp, target.label("bucket"), activity.c.person_id)
        .select_from(activity.join(ahead, true()))
        .where(target < count)
        .subquery("spread")
    )
    return select(
        spread.c.grp, spread.c.bucket, func.count(spread.c.person_id.distinct()).label("value")
    ).group_by(spread.c.grp, spread.c.bucket)


def _first_events(rows: Subquery, ctx: ReportContext) -> Subquery:
    """Each person's first event (by time, then arrival) when it lies in the range."""
    nth = func.row_number().over(partition_by=rows.c.person_id, order_by=(rows.c.ts, rows.c.id))
    numbered = select(rows, nth.label("nth")).subquery("numbered")
    return (
        select(numbered)
        .where(numbered.c.nth == 1, numbered.c.ts >= ctx.from_us)
        .subquery("first_events")
    )


@dataclass(frozen=True)
class VolumePoint:
    time: str
    count: int


@dataclass(frozen=True)
class VolumeResult:
    interval: str
    series: list[VolumePoint]
    sampled: float | None = None
    previous: VolumeResult | None = None  # with compare="previous", as in TrendsResult


def volume(
    ctx: ReportContext,
    *,
    event: str | None = None,
    interval: str = "day",
    compare: str | None = None,
) -> VolumeResult:
    """Events per bucket (every bucket present, zero-filled)."""
    result = trends(ctx, event=event, interval=interval, math="total", compare=compare)
    return _volume(result, ctx.sample)


def _volume(result: TrendsResult, sample: float | None) -> VolumeResult:
    series = [VolumePoint(p.time, round(p.value)) for p in result.results[0].series]
    previous = None if result.previous is None else _volume(result.previous, sample)
    return VolumeResult(result.interval, series, sample, previous)


def trend_persons(
    ctx: ReportContext,
    *,
    time: str,
    event: str | None = None,
    interval: str = "day",
    breakdown: str | None = None,
    breakdown_limit: int = 10,
    breakdown_value: str | None = None,
    breakdown_type: str = "event",
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
    segment = breakdown_segment(ctx, breakdown, breakdown_type)
    if segment is not None and breakdown_value not in SEGMENT_GROUPS:
        raise ValidationError("breakdown_value", "must be in or out for a segment breakdown")
    buckets = ctx.buckets(interval)
    labels = buckets.labels()
    if time not in labels:
        raise ValidationError("time", "must be the start of a point the report shows")
    index = labels.index(time)
    bounds = [to_micros(start) for start in buckets.starts] + [buckets.end_us]
    span = (max(bounds[index], ctx.from_us), min(bounds[index + 1], ctx.to_us))
    top: list[str | None] | None = None
    if breakdown is not None and breakdown_value == OTHER:  # the report's own top values
        # Refused when the report itself would be (too many points), as before.
        ctx.check_cells(len(buckets.starts) * (breakdown_limit + 1), "breakdown_limit", "points")
        top = _shown_values(
            ctx, buckets, event, breakdown, breakdown_limit, breakdown_type, segment
        )
    if is_clickhouse():
        from ..engines.clickhouse.trends import persons_sql

        return PersonSource.clickhouse(
            *persons_sql(
                ctx,
                span,
                event,
                breakdown,
                breakdown_value,
                top,
                breakdown_type=breakdown_type,
                segment=segment,
            )
        )
    base = person_events(ctx.scope_id).where(
        events.c.ts >= span[0], events.c.ts < span[1], *ctx.event_filters()
    )
    if event is not None:
        base = base.where(events.c.event == event)
    if breakdown is not None:
        base, value = _breakdown_value(base, breakdown, breakdown_type, segment)
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
