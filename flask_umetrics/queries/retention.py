"""Retention cohorts: of the persons who started in a period, how many came back k periods later.

Semantics: docs/funnels-retention.md has the long version.

- Periods are calendar hours, days, weeks (from ``week_start``: Monday or Sunday) or months in
  ``UMETRICS_TIMEZONE`` (DST-correct). A
  cohort period is shown when its start lies inside ``[date_from, date_to)``; its membership and
  returns use the whole period (even the part after ``date_to``). Empty cohorts are zero-filled.
- Start / return event: an event name (any event of that name counts, active or not), or by
  default any *active* event (``active=false`` events never count for a default).
- ``first_time``: a person's cohort is the period of their first start event over all time;
  ``recurring``: every shown period in which they did a start event.
- Cell ``(P, k)``, ``k = 0..periods``: cohort persons with a return event in period ``P + k``
  (``bounded``), or in ``P + k`` or any later period up to now (``unbounded``). Returns are by
  period, not relative to the start event's time: a return earlier in period ``P`` counts for
  ``k = 0``.
- ``windows="rolling"`` (Amplitude's "N-day" retention, PostHog's ``24_hour_windows``): the cohort
  is still the calendar period of the start event, but column ``k`` is the ``k``-th window of the
  period's length (1 h, 24 h, 7 x 24 h; not months) from the person's *anchor*, the first start
  event in the cohort period: a return at ``t`` with ``anchor + k*L <= t < anchor + (k+1)*L``
  (``bounded``), or any ``t >= anchor + k*L`` (``unbounded``).
- Report filters apply to both start and return events; ``start_filters`` only to start events,
  ``return_filters`` only to return events. Persons are counted once however many distinct ids
  were merged into them.
- ``breakdown``: one grid per value of an event property (its value on the person's anchor start
  event; at equal times the smallest value by code point) or a person property (its current
  value): the top ``breakdown_limit`` values by cohort members, then ``$other``; a missing value
  is a group of its own (``None``) when in the top.
- The curve: for each ``k``, the returned members over the members of the cohorts that had the
  chance to reach ``k`` (period ``P + k`` has begun by now), i.e. the mean of those cohorts'
  fractions weighted by cohort size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import BigInteger, and_, case, cast, func, literal, null, or_, select
from sqlalchemy.sql import ColumnElement, Subquery

from ..db.tables import events, persons
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from ..events.validation import to_micros
from .buckets import Buckets, floor_to, next_start
from .connection import report_connection
from .context import ReportContext
from .filters import PropertyFilter
from .persons import PersonSource
from .sql import (
    OTHER,
    by_codepoint,
    check_property_key,
    other_group,
    person_events,
    prop_text,
    top_values,
)

PERIODS: tuple[str, ...] = ("hour", "day", "week", "month")
MODES: tuple[str, ...] = ("first_time", "recurring")
WINDOWS: tuple[str, ...] = ("calendar", "rolling")
WEEK_STARTS: dict[str, int] = {"monday": 0, "sunday": 6}
BREAKDOWN_TYPES: tuple[str, ...] = ("event", "person")
MAX_PERIODS = 366
MAX_BREAKDOWN_LIMIT = 50
#: A rolling window's length in µs per period (months have none).
WINDOW_US: dict[str, int] = {
    "hour": 3_600_000_000,
    "day": 86_400_000_000,
    "week": 7 * 86_400_000_000,
}


@dataclass(frozen=True)
class RetentionCohort:
    start: str
    size: int | float
    counts: list[int | float]
    fractions: list[float]


@dataclass(frozen=True)
class RetentionBreakdown:
    """One breakdown value's grid (``None``: the property is missing; ``$other``: the rest)."""

    value: str | None
    cohorts: list[RetentionCohort]
    curve: list[float | None]


@dataclass(frozen=True)
class RetentionResult:
    period: str
    cohorts: list[RetentionCohort]
    periods: int
    mode: str
    bounded: bool
    start_event: str | None = None
    return_event: str | None = None
    sampled: float | None = None
    week_start: str = "monday"
    windows: str = "calendar"
    #: Per ``k``: returned over members of the cohorts that had the chance to reach ``k``
    #: (``None`` when no cohort had).
    curve: list[float | None] = field(default_factory=list)
    breakdown: str | None = None
    breakdown_type: str | None = None
    breakdowns: list[RetentionBreakdown] | None = None


@dataclass(frozen=True)
class Spec:
    """A retention query's options, validated (what the SQL builders of both engines read)."""

    start_event: str | None = None
    return_event: str | None = None
    period: str = "week"
    periods: int = 8
    mode: str = "first_time"
    bounded: bool = True
    start_filters: tuple[PropertyFilter, ...] = ()
    return_filters: tuple[PropertyFilter, ...] = ()
    week_start: str = "monday"
    windows: str = "calendar"
    breakdown: str | None = None
    breakdown_type: str = "event"
    breakdown_limit: int = 10

    @property
    def rolling(self) -> bool:
        return self.windows == "rolling"

    @property
    def window_us(self) -> int:
        return WINDOW_US[self.period]

    @property
    def event_value(self) -> bool:
        """Whether the breakdown reads the start event's property."""
        return self.breakdown is not None and self.breakdown_type == "event"


def _filters(value: Any, name: str) -> tuple[PropertyFilter, ...]:
    try:
        return tuple(
            f if isinstance(f, PropertyFilter) else PropertyFilter.model_validate(f)
            for f in (value or [])
        )
    except (ValueError, TypeError) as exc:
        raise ValidationError(name, "must be a list of {key, op, value} objects") from exc


def make_spec(**options: Any) -> Spec:
    """Validate the options (a ``ValidationError`` names the field)."""
    options["start_filters"] = _filters(options.get("start_filters"), "start_filters")
    options["return_filters"] = _filters(options.get("return_filters"), "return_filters")
    spec = Spec(**{k: v for k, v in options.items() if v is not None})
    if spec.period not in PERIODS:
        raise ValidationError("period", f"must be one of {', '.join(PERIODS)}")
    if spec.mode not in MODES:
        raise ValidationError("mode", f"must be one of {', '.join(MODES)}")
    if not 1 <= spec.periods <= MAX_PERIODS:
        raise ValidationError("periods", f"must be between 1 and {MAX_PERIODS}")
    if spec.week_start not in WEEK_STARTS:
        raise ValidationError("week_start", "must be monday or sunday")
    if spec.windows not in WINDOWS:
        raise ValidationError("windows", f"must be one of {', '.join(WINDOWS)}")
    if spec.rolling and spec.period not in WINDOW_US:
        raise ValidationError("windows", "rolling windows need period hour, day or week")
    if spec.breakdown_type not in BREAKDOWN_TYPES:
        raise ValidationError("breakdown_type", "must be event or person")
    if spec.breakdown is not None:
        check_property_key(spec.breakdown, "breakdown")
    if not 1 <= spec.breakdown_limit <= MAX_BREAKDOWN_LIMIT:
        raise ValidationError("breakdown_limit", f"must be between 1 and {MAX_BREAKDOWN_LIMIT}")
    return spec


def _event_condition(ctx: ReportContext, event: str | None) -> list[ColumnElement[bool]]:
    chosen = events.c.active.is_(True) if event is None else events.c.event == event
    return [chosen, *ctx.event_filters()]


def _periods(ctx: ReportContext, spec: Spec) -> tuple[Buckets, int]:
    """Buckets of the shown cohorts followed by ``periods`` more; and how many cohorts."""
    week_start = WEEK_STARTS[spec.week_start]
    first = floor_to(ctx.date_from, spec.period, ctx.zone, week_start)
    if first < ctx.date_from:  # the period containing date_from started before the range
        first = next_start(first, spec.period, ctx.zone)
    buckets = ctx.buckets(
        spec.period, field="period", date_from=first, extra=spec.periods, week_start=week_start
    )
    return buckets, len(buckets.starts) - spec.periods


#: ``{(breakdown group or None, cohort index): (size, [returned k = 0..periods])}``.
Cells = dict[tuple[str | None, int], tuple[int, list[int]]]


def retention(
    ctx: ReportContext,
    *,
    start_event: str | None = None,
    return_event: str | None = None,
    period: str = "week",
    periods: int = 8,
    mode: str = "first_time",
    bounded: bool = True,
    start_filters: list[PropertyFilter] | list[dict[str, Any]] | None = None,
    return_filters: list[PropertyFilter] | list[dict[str, Any]] | None = None,
    week_start: str = "monday",
    windows: str = "calendar",
    breakdown: str | None = None,
    breakdown_type: str = "event",
    breakdown_limit: int = 10,
) -> RetentionResult:
    """One row per cohort period: its size and, for ``k = 0..periods``, how many returned; the
    curve; with ``breakdown``, the same per breakdown value."""
    spec = make_spec(
        start_event=start_event,
        return_event=return_event,
        period=period,
        periods=periods,
        mode=mode,
        bounded=bounded,
        start_filters=start_filters,
        return_filters=return_filters,
        week_start=week_start,
        windows=windows,
        breakdown=breakdown,
        breakdown_type=breakdown_type,
        breakdown_limit=breakdown_limit,
    )
    buckets, shown = _periods(ctx, spec)
    result = RetentionResult(
        period,
        [],
        periods,
        mode,
        bounded,
        start_event,
        return_event,
        ctx.sample,
        spec.week_start,
        spec.windows,
        [],
        breakdown,
        None if breakdown is None else spec.breakdown_type,
        None if breakdown is None else [],
    )
    if shown < 1:
        return result
    groups = 1 if breakdown is None else spec.breakdown_limit + 2
    ctx.check_cells(shown * (periods + 1) * groups, "periods", "cells")
    if is_clickhouse():
        from ..engines.clickhouse.retention import cells as clickhouse_cells

        top, found = clickhouse_cells(ctx, spec, buckets, shown)
    else:
        top, found = _sql_cells(ctx, spec, buckets, shown)
    labels = buckets.labels()[:shown]
    reachable = _reachable(buckets, shown, periods)
    total: Cells = {}
    for (_, p), (size, raw) in found.items():
        before = total.get((None, p), (0, [0] * (periods + 1)))
        total[(None, p)] = (before[0] + size, [a + b for a, b in zip(before[1], raw, strict=True)])
    result.cohorts.extend(_grid(ctx, total, None, labels, periods))
    result.curve.extend(_curve(total, None, reachable, periods))
    if result.breakdowns is not None:
        names = [*top, *([OTHER] if any(g == OTHER for g, _ in found) else [])]
        for name in names:
            result.breakdowns.append(
                RetentionBreakdown(
                    name,
                    _grid(ctx, found, name, labels, periods),
                    _curve(found, name, reachable, periods),
                )
            )
    return result


def _grid(
    ctx: ReportContext, found: Cells, group: str | None, labels: list[str], periods: int
) -> list[RetentionCohort]:
    cohorts = []
    for p, label in enumerate(labels):
        size, raw = found.get((group, p), (0, [0] * (periods + 1)))
        cohorts.append(
            RetentionCohort(
                label,
                ctx.scale(size),
                [ctx.scale(n) for n in raw],
                [n / size if size else 0.0 for n in raw],
            )
        )
    return cohorts


def _reachable(buckets: Buckets, shown: int, periods: int) -> list[list[bool]]:
    """``[p][k]``: whether period ``p + k`` has begun by now (cohort ``p`` could reach ``k``)."""
    now = datetime.now(timezone.utc)
    return [[buckets.starts[p + k] <= now for k in range(periods + 1)] for p in range(shown)]


def _curve(
    found: Cells, group: str | None, reachable: list[list[bool]], periods: int
) -> list[float | None]:
    """Per ``k``: returned over members, over the cohorts that could reach ``k``."""
    curve: list[float | None] = []
    for k in range(periods + 1):
        members = returned = 0
        for p, row in enumerate(reachable):
            if row[k] and (group, p) in found:
                size, raw = found[(group, p)]
                members += size
                returned += raw[k]
        curve.append(returned / members if members else None)
    return curve


def _starts_returns(
    ctx: ReportContext, spec: Spec, buckets: Buckets, shown: int
) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    cohort_start = buckets.start_us
    cohort_end = to_micros(buckets.starts[shown])
    starts = and_(
        *_event_condition(ctx, spec.start_event),
        *(f.condition(events.c.properties) for f in spec.start_filters),
        events.c.ts < cohort_end,
    )
    if spec.mode == "recurring":
        starts = and_(starts, events.c.ts >= cohort_start)
    returns = and_(
        *_event_condition(ctx, spec.return_event),
        *(f.condition(events.c.properties) for f in spec.return_filters),
        events.c.ts >= cohort_start,
    )
    if spec.bounded:
        end = cohort_end + (spec.periods + 1) * spec.window_us if spec.rolling else buckets.end_us
        returns = and_(returns, events.c.ts < end)
    return starts, returns


def _activity(ctx: ReportContext, spec: Spec, buckets: Buckets, shown: int) -> Subquery:
    """One row per (person, period) with "started" / "returned" flags, the ``anchor`` (first
    start event's time) and, for an event-property breakdown, its value ``v``."""
    starts, returns = _starts_returns(ctx, spec, buckets, shown)
    base = person_events(ctx.scope_id).where(or_(starts, returns))
    person_id = base.selected_columns.person_id
    # Before the first shown period: -1 (only first-ever starts look there); after the last: len.
    marked_columns: list[ColumnElement[Any]] = [
        person_id,
        buckets.index(events.c.ts).label("period"),
        _flag(starts).label("s"),
        _flag(returns).label("r"),
        events.c.ts.label("ts"),
    ]
    if spec.event_value:
        assert spec.breakdown is not None
        marked_columns.append(prop_text(events.c.properties, spec.breakdown).label("v"))
    marked = (
        base.where(*ctx.sampled(person_id)).with_only_columns(*marked_columns).subquery("marked")
    )
    columns: list[ColumnElement[Any]] = [
        marked.c.person_id,
        marked.c.period,
        func.max(marked.c.s).label("started"),
        func.max(marked.c.r).label("returned"),
        func.min(case((marked.c.s == 1, marked.c.ts))).label("anchor"),
    ]
    source: Subquery = marked
    if spec.event_value:
        first = func.min(case((marked.c.s == 1, marked.c.ts))).over(
            partition_by=[marked.c.person_id, marked.c.period]
        )
        source = select(*marked.c, first.label("first_ts")).subquery("timed")
        at_anchor = and_(source.c.s == 1, source.c.ts == source.c.first_ts)
        columns = [
            source.c.person_id,
            source.c.period,
            func.max(source.c.s).label("started"),
            func.max(source.c.r).label("returned"),
            func.min(source.c.first_ts).label("anchor"),
            func.min(by_codepoint(case((at_anchor, source.c.v)))).label("v"),
        ]
    return select(*columns).group_by(source.c.person_id, source.c.period).subquery("activity")


def _members(activity: Subquery, spec: Spec, shown: int) -> ColumnElement[bool]:
    member = and_(activity.c.started == 1, activity.c.period >= 0, activity.c.period < shown)
    if spec.mode == "first_time":
        first = func.min(case((activity.c.started == 1, activity.c.period))).over(
            partition_by=activity.c.person_id
        )
        member = and_(member, activity.c.period == first)
    return member


def _calendar(ctx: ReportContext, spec: Spec, buckets: Buckets, shown: int) -> Subquery:
    """One row per (person, period): ``member`` of that period's cohort, and ``b0..bN``, came
    back ``k`` periods later. No joins between derived tables: window functions over each
    person's periods look ``k`` periods ahead."""
    activity = _activity(ctx, spec, buckets, shown)
    person = activity.c.person_id
    if spec.bounded:
        ahead = [
            func.max(activity.c.returned).over(
                partition_by=person, order_by=activity.c.period, range_=(k, k)
            )
            for k in range(spec.periods + 1)
        ]
        came_back: list[ColumnElement[Any]] = [func.coalesce(value, 0) for value in ahead]
    else:
        last = func.max(case((activity.c.returned == 1, activity.c.period))).over(
            partition_by=person
        )
        came_back = [_flag(last >= activity.c.period + k) for k in range(spec.periods + 1)]
    flagged = select(
        activity.c.person_id,
        activity.c.period.label("cohort"),
        activity.c.v if spec.event_value else literal(None).label("v"),
        _flag(_members(activity, spec, shown)).label("member"),
        *(value.label(f"b{k}") for k, value in enumerate(came_back)),
    ).subquery("flagged")
    return (
        select(*(c for c in flagged.c if c.name != "member"))
        .where(flagged.c.member == 1)
        .subquery("grouped")
    )


def _rolling(ctx: ReportContext, spec: Spec, buckets: Buckets, shown: int) -> Subquery:
    """One row per (person, cohort) with ``b0..bN``: a return event in the ``k``-th window
    (``anchor + k*L``, ``L`` the period's length) from the person's anchor."""
    activity = _activity(ctx, spec, buckets, shown)
    marked = select(
        activity.c.person_id,
        activity.c.period.label("cohort"),
        activity.c.anchor,
        activity.c.v if spec.event_value else literal(None).label("v"),
        _flag(_members(activity, spec, shown)).label("member"),
    ).subquery("marked_members")
    members = select(marked).where(marked.c.member == 1).subquery("members")
    _, returns = _starts_returns(ctx, spec, buckets, shown)
    base = person_events(ctx.scope_id).where(returns)
    rets = ctx.rows(base.with_only_columns(base.selected_columns.person_id, events.c.ts), "rets")
    join = and_(rets.c.person_id == members.c.person_id, rets.c.ts >= members.c.anchor)
    width = spec.window_us
    if spec.bounded:
        join = and_(join, rets.c.ts < members.c.anchor + (spec.periods + 1) * width)
    window = (rets.c.ts - members.c.anchor) // width
    came_back: list[ColumnElement[Any]]
    if spec.bounded:
        came_back = [func.max(_flag(window == k)) for k in range(spec.periods + 1)]
    else:
        last = func.max(window)
        came_back = [_flag(last >= k) for k in range(spec.periods + 1)]
    return (
        select(
            members.c.person_id,
            members.c.cohort,
            members.c.v,
            *(value.label(f"b{k}") for k, value in enumerate(came_back)),
        )
        .select_from(members.outerjoin(rets, join))
        .group_by(members.c.person_id, members.c.cohort, members.c.v)
        .subquery("grouped")
    )


def _valued(ctx: ReportContext, spec: Spec, buckets: Buckets, shown: int) -> Subquery:
    """One row per (person, cohort they belong to): ``grp`` (the breakdown value) and
    ``b0..bN``."""
    grouped = (_rolling if spec.rolling else _calendar)(ctx, spec, buckets, shown)
    flags = [grouped.c[f"b{k}"] for k in range(spec.periods + 1)]
    if spec.breakdown is not None and spec.breakdown_type == "person":
        value: ColumnElement[Any] = prop_text(persons.c.properties, spec.breakdown)
        source: Any = grouped.outerjoin(persons, persons.c.id == grouped.c.person_id)
    else:
        value, source = grouped.c.v, grouped
    return (
        select(grouped.c.person_id, grouped.c.cohort, value.label("grp"), *flags)
        .select_from(source)
        .subquery("valued")
    )


def _sql_cells(
    ctx: ReportContext, spec: Spec, buckets: Buckets, shown: int
) -> tuple[list[str | None], Cells]:
    """Per breakdown group and shown cohort: its size and ``k0..kN``."""
    valued = _valued(ctx, spec, buckets, shown)
    with report_connection() as connection:
        top: list[str | None] = []
        group: ColumnElement[Any] = literal(None)
        if spec.breakdown is not None:
            top = top_values(connection, valued.c.grp, spec.breakdown_limit)
            group = other_group(valued.c.grp, top)
        query = select(
            group.label("g"),
            valued.c.cohort,
            func.count().label("size"),
            *(func.sum(valued.c[f"b{k}"]).label(f"k{k}") for k in range(spec.periods + 1)),
        ).group_by(group, valued.c.cohort)
        found = {
            (row.g, int(row.cohort)): (
                int(row.size),
                [int(row._mapping[f"k{k}"]) for k in range(spec.periods + 1)],
            )
            for row in connection.execute(query)
        }
    return top, found


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def retention_persons(
    ctx: ReportContext,
    *,
    cohort: str,
    k: int,
    breakdown_value: str | None = None,
    **options: Any,
) -> PersonSource:
    """The persons of cell ``(cohort, k)``: members of the cohort whose start is ``cohort`` (as
    the report labels it) who came back ``k`` periods later (``at`` is NULL: a cell has no one
    moment per person). ``options`` are :func:`retention`'s; with a ``breakdown``, the cell of
    the grid of ``breakdown_value`` (``None``: the missing value; ``$other``: the values outside
    the report's top)."""
    spec = make_spec(**options)
    if not 0 <= k <= spec.periods:
        raise ValidationError("period", f"the column k must be between 0 and {spec.periods}")
    if spec.breakdown is None and breakdown_value is not None:
        raise ValidationError("breakdown_value", "needs a breakdown")
    buckets, shown = _periods(ctx, spec)
    labels = buckets.labels()[: max(shown, 0)]
    if cohort not in labels:
        raise ValidationError("cohort", "must be the start of a cohort the report shows")
    index = labels.index(cohort)
    if is_clickhouse():
        from ..engines.clickhouse.retention import persons_sql

        return PersonSource.clickhouse(
            *persons_sql(ctx, spec, buckets, shown, index, k, breakdown_value)
        )
    valued = _valued(ctx, spec, buckets, shown)
    conditions = [valued.c.cohort == index, valued.c[f"b{k}"] == 1]
    if spec.breakdown is not None:
        if breakdown_value == OTHER:
            with report_connection() as connection:
                top = top_values(connection, valued.c.grp, spec.breakdown_limit)
            conditions.append(other_group(valued.c.grp, top) == OTHER)
        elif breakdown_value is None:
            conditions.append(valued.c.grp.is_(None))
        else:
            conditions.append(valued.c.grp == breakdown_value)
    return PersonSource.sql(select(valued.c.person_id, _none().label("at")).where(*conditions))


def _none() -> ColumnElement[Any]:
    return cast(null(), BigInteger)
