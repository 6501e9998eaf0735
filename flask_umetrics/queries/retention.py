"""Retention cohorts: of the persons who started in a period, how many came back k periods later.

Semantics (DESIGN.md §5 "Retention"); docs/funnels-retention.md has the long version.

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

from sqlalchemy import and_, func, select
from sqlalchemy.sql import ColumnElement

from ..db.tables import events
from ..errors import ValidationError
from ..events.validation import to_micros
from ..state import current_state
from .buckets import Buckets, floor_to, next_start
from .context import ReportContext
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
    buckets = Buckets.covering(first, ctx.date_to, period, ctx.zone, extra=periods)
    return buckets, len(buckets.starts) - periods


def _rows(ctx: ReportContext, condition: list[ColumnElement[bool]]) -> Any:
    query = person_events(ctx.scope_id).where(*condition)
    person_id = query.selected_columns.person_id
    return query.where(*ctx.sampled(person_id)), person_id


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
    if period not in PERIODS:
        raise ValidationError("period", f"must be one of {', '.join(PERIODS)}")
    if mode not in MODES:
        raise ValidationError("mode", f"must be one of {', '.join(MODES)}")
    if not 1 <= periods <= MAX_PERIODS:
        raise ValidationError("periods", f"must be between 1 and {MAX_PERIODS}")
    buckets, shown = _periods(ctx, period, periods)
    result = RetentionResult(
        period, [], periods, mode, bounded, start_event, return_event, ctx.sample
    )
    if shown < 1:
        return result
    cohort_start = buckets.start_us
    cohort_end = to_micros(buckets.starts[shown])
    starts, start_person = _rows(ctx, _event_condition(ctx, start_event))
    if mode == "first_time":
        first = (
            starts.where(events.c.ts < cohort_end)
            .with_only_columns(start_person, func.min(events.c.ts).label("first_ts"))
            .group_by(start_person)
            .subquery("first")
        )
        cohort = buckets.index(first.c.first_ts)
        members = (
            select(first.c.person_id, cohort.label("cohort"))
            .where(first.c.first_ts >= cohort_start)
            .cte("members")
        )
    else:
        members = (
            starts.where(events.c.ts >= cohort_start, events.c.ts < cohort_end)
            .with_only_columns(start_person, buckets.index(events.c.ts).label("cohort"))
            .distinct()
            .cte("members")
        )
    returns, return_person = _rows(ctx, _event_condition(ctx, return_event))
    returns = returns.where(events.c.ts >= cohort_start)
    if bounded:
        returns = returns.where(events.c.ts < buckets.end_us)
    index = buckets.index(events.c.ts)
    if bounded:
        came_back = returns.with_only_columns(return_person, index.label("p")).distinct()
    else:
        came_back = returns.with_only_columns(return_person, func.max(index).label("p")).group_by(
            return_person
        )
    back = came_back.subquery("back")
    sizes_query = select(members.c.cohort, func.count().label("n")).group_by(members.c.cohort)
    offset = back.c.p - members.c.cohort
    joined = members.join(back, back.c.person_id == members.c.person_id)
    if bounded:
        cells_query = (
            select(members.c.cohort, offset.label("k"), func.count().label("n"))
            .select_from(joined)
            .where(and_(offset >= 0, offset <= periods))
            .group_by(members.c.cohort, offset)
        )
    else:
        # Returning at or after P + k counts for every k up to the last period returned in.
        cells_query = (
            select(members.c.cohort, offset.label("k"), func.count().label("n"))
            .select_from(joined)
            .where(offset >= 0)
            .group_by(members.c.cohort, offset)
        )
    with current_state().engine.connect() as connection:
        sizes = {row.cohort: int(row.n) for row in connection.execute(sizes_query)}
        cells: dict[tuple[int, int], int] = {}
        for row in connection.execute(cells_query):
            cells[(row.cohort, int(row.k))] = int(row.n)
    labels = buckets.labels()
    for p in range(shown):
        size = sizes.get(p, 0)
        if bounded:
            raw = [cells.get((p, k), 0) for k in range(periods + 1)]
        else:
            # cells[(p, d)] = persons whose last return is d periods after P (d may exceed N).
            last = {d: n for (q, d), n in cells.items() if q == p}
            raw = [sum(n for d, n in last.items() if d >= k) for k in range(periods + 1)]
        result.cohorts.append(
            RetentionCohort(
                labels[p],
                ctx.scale(size),
                [ctx.scale(n) for n in raw],
                [n / size if size else 0.0 for n in raw],
            )
        )
    return result
