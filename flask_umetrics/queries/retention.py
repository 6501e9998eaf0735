"""Retention cohorts: of the persons who started in a period, how many came back k periods later.

Semantics: docs/funnels-retention.md has the long version.

- Periods are calendar days, Monday weeks or months in ``UMETRICS_TIMEZONE`` (DST-correct). A
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
- Report filters apply to both start and return events; persons are counted once however many
  distinct ids were merged into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, and_, case, cast, func, null, or_, select
from sqlalchemy.sql import ColumnElement, Select, Subquery

from ..db.tables import events
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from ..events.validation import to_micros
from .buckets import Buckets, floor_to, next_start
from .connection import report_connection
from .context import ReportContext
from .persons import PersonSource
from .sql import person_events

PERIODS: tuple[str, ...] = ("day", "week", "month")
MODES: tuple[str, ...] = ("first_time", "recurring")
MAX_PERIODS = 366


@dataclass(frozen=True)
class RetentionCohort:
    start: str
    size: int | float
    counts: list[int | float]
    fractions: list[float]


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


def _event_condition(ctx: ReportContext, event: str | None) -> list[ColumnElement[bool]]:
    chosen = events.c.active.is_(True) if event is None else events.c.event == event
    return [chosen, *ctx.event_filters()]


def _periods(ctx: ReportContext, period: str, periods: int) -> tuple[Buckets, int]:
    """Buckets of the shown cohorts followed by ``periods`` more; and how many cohorts."""
    first = floor_to(ctx.date_from, period, ctx.zone)
    if first < ctx.date_from:  # the period containing date_from started before the range
        first = next_start(first, period, ctx.zone)
    buckets = ctx.buckets(period, field="period", date_from=first, extra=periods)
    return buckets, len(buckets.starts) - periods


def _validate(period: str, periods: int, mode: str) -> None:
    if period not in PERIODS:
        raise ValidationError("period", f"must be one of {', '.join(PERIODS)}")
    if mode not in MODES:
        raise ValidationError("mode", f"must be one of {', '.join(MODES)}")
    if not 1 <= periods <= MAX_PERIODS:
        raise ValidationError("periods", f"must be between 1 and {MAX_PERIODS}")


def retention(
    ctx: ReportContext,
    *,
    start_event: str | None = None,
    return_event: str | None = None,
    period: str = "week",
    periods: int = 8,
    mode: str = "first_time",
    bounded: bool = True,
) -> RetentionResult:
    """One row per cohort period: its size and, for ``k = 0..periods``, how many returned."""
    _validate(period, periods, mode)
    buckets, shown = _periods(ctx, period, periods)
    result = RetentionResult(
        period, [], periods, mode, bounded, start_event, return_event, ctx.sample
    )
    if shown < 1:
        return result
    ctx.check_cells(shown * (periods + 1), "periods", "cells")
    args = (ctx, buckets, shown, start_event, return_event, periods, mode, bounded)
    if is_clickhouse():
        from ..engines.clickhouse.retention import cells as clickhouse_cells

        found = clickhouse_cells(*args)
    else:
        query = _cells(*args)
        with report_connection() as connection:
            found = {
                row.cohort: (
                    int(row.size),
                    [int(row._mapping[f"k{k}"]) for k in range(periods + 1)],
                )
                for row in connection.execute(query)
            }
    for p, label in enumerate(buckets.labels()[:shown]):
        size, raw = found.get(p, (0, [0] * (periods + 1)))
        result.cohorts.append(
            RetentionCohort(
                label,
                ctx.scale(size),
                [ctx.scale(n) for n in raw],
                [n / size if size else 0.0 for n in raw],
            )
        )
    return result


def _flagged(
    ctx: ReportContext,
    buckets: Buckets,
    shown: int,
    start_event: str | None,
    return_event: str | None,
    periods: int,
    mode: str,
    bounded: bool,
) -> Subquery:
    """One row per (person, period): ``member`` of that period's cohort, and ``b0..bN``, came
    back ``k`` periods later. No joins between derived tables: one row per (person, period)
    with "started" / "returned" flags, and window functions over each person's periods look
    ``k`` periods ahead."""
    cohort_start = buckets.start_us
    cohort_end = to_micros(buckets.starts[shown])
    starts = and_(*_event_condition(ctx, start_event), events.c.ts < cohort_end)
    if mode == "recurring":
        starts = and_(starts, events.c.ts >= cohort_start)
    returns = and_(*_event_condition(ctx, return_event), events.c.ts >= cohort_start)
    if bounded:
        returns = and_(returns, events.c.ts < buckets.end_us)
    base = person_events(ctx.scope_id).where(or_(starts, returns))
    person_id = base.selected_columns.person_id
    # Before the first shown period: -1 (only first-ever starts look there); after the last: len.
    period = buckets.index(events.c.ts)
    activity = (
        base.where(*ctx.sampled(person_id))
        .with_only_columns(
            person_id,
            period.label("period"),
            func.max(_flag(starts)).label("started"),
            func.max(_flag(returns)).label("returned"),
        )
        .group_by(person_id, period)
        .subquery("activity")
    )
    person = activity.c.person_id
    member = and_(activity.c.started == 1, activity.c.period >= 0, activity.c.period < shown)
    if mode == "first_time":
        first = func.min(case((activity.c.started == 1, activity.c.period))).over(
            partition_by=person
        )
        member = and_(member, activity.c.period == first)
    if bounded:
        ahead = [
            func.max(activity.c.returned).over(
                partition_by=person, order_by=activity.c.period, range_=(k, k)
            )
            for k in range(periods + 1)
        ]
        came_back: list[ColumnElement[Any]] = [func.coalesce(value, 0) for value in ahead]
    else:
        last = func.max(case((activity.c.returned == 1, activity.c.period))).over(
            partition_by=person
        )
        came_back = [_flag(last >= activity.c.period + k) for k in range(periods + 1)]
    return select(
        activity.c.person_id,
        activity.c.period.label("cohort"),
        _flag(member).label("member"),
        *(value.label(f"b{k}") for k, value in enumerate(came_back)),
    ).subquery("flagged")


def _cells(
    ctx: ReportContext,
    buckets: Buckets,
    shown: int,
    start_event: str | None,
    return_event: str | None,
    periods: int,
    mode: str,
    bounded: bool,
) -> Select[Any]:
    """Per shown cohort: its size and ``k0..kN``."""
    flagged = _flagged(ctx, buckets, shown, start_event, return_event, periods, mode, bounded)
    cohort_rows = flagged.c.member == 1
    return (
        select(
            flagged.c.cohort,
            func.count().label("size"),
            *(func.sum(flagged.c[f"b{k}"]).label(f"k{k}") for k in range(periods + 1)),
        )
        .where(cohort_rows)
        .group_by(flagged.c.cohort)
    )


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def retention_persons(
    ctx: ReportContext,
    *,
    cohort: str,
    k: int,
    start_event: str | None = None,
    return_event: str | None = None,
    period: str = "week",
    periods: int = 8,
    mode: str = "first_time",
    bounded: bool = True,
) -> PersonSource:
    """The persons of cell ``(cohort, k)``: members of the cohort whose start is ``cohort`` (as
    the report labels it) who came back ``k`` periods later (``at`` is NULL: a cell has no one
    moment per person)."""
    _validate(period, periods, mode)
    if not 0 <= k <= periods:
        raise ValidationError("period", f"the column k must be between 0 and {periods}")
    buckets, shown = _periods(ctx, period, periods)
    labels = buckets.labels()[: max(shown, 0)]
    if cohort not in labels:
        raise ValidationError("cohort", "must be the start of a cohort the report shows")
    index = labels.index(cohort)
    args = (ctx, buckets, shown, start_event, return_event, periods, mode, bounded)
    if is_clickhouse():
        from ..engines.clickhouse.retention import persons_sql

        return PersonSource.clickhouse(*persons_sql(*args, index, k))
    flagged = _flagged(*args)
    return PersonSource.sql(
        select(flagged.c.person_id, _none().label("at")).where(
            flagged.c.member == 1, flagged.c.cohort == index, flagged.c[f"b{k}"] == 1
        )
    )


def _none() -> ColumnElement[Any]:
    return cast(null(), BigInteger)
