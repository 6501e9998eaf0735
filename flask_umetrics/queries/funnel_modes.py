"""Two more views of one funnel: conversion per entry period, and the time between two steps.

Both read the attempts ``queries/funnel.py`` builds (``_chains``, exclusions applied), so they
share the funnel's definition of an attempt, its window and its order:

- ``funnel_trends``: the entry periods are calendar buckets (``queries/buckets.py``) of the
  scope's time zone over ``[date_from, date_to)``. A person *enters* period ``p`` when one of
  their attempts has its step-1 event in ``p``, and *converts* in ``p`` when one of those
  attempts reaches the last step (within the window). Every period is in the answer, empty ones
  with ``0`` and a rate of ``0.0``. A person entering in two periods counts in both.
- ``funnel_time_to_convert``: over the persons whose chosen attempt (the funnel's: longest,
  then earliest entry) reached ``to_step``, the time from its ``from_step`` event to its
  ``to_step`` event (0-based steps, as exclusions). Average, exact median (the mean of the two
  middle values for an even count), and ``bins`` equal bins of whole seconds starting at the
  smallest time, whole second below: width ``max(1, ceil((max - start) / bins))`` seconds, the
  last bin closed. The times are the funnel's, so ``from_step = j - 1, to_step = j`` gives the
  funnel's median from the previous step of step ``j`` (1-based).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Integer, case, func, literal_column, select
from sqlalchemy.sql import ColumnElement

from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from .connection import report_connection
from .context import Count, ReportContext
from .funnel import (
    DEFAULT_WINDOW_SECONDS,
    FunnelExclusion,
    FunnelStep,
    _best_attempts,
    _chains,
    _greatest,
    _validate,
    _validate_exclusions,
)

TREND_INTERVALS: tuple[str, ...] = ("day", "week", "month")
MAX_BINS = 100
DEFAULT_BINS = 10
_MICROS = 1_000_000


@dataclass(frozen=True)
class FunnelTrendPoint:
    #: The entry period's start (ISO, in the scope's time zone).
    start: str
    entered: Count
    converted: Count
    conversion_rate: float


@dataclass(frozen=True)
class FunnelTrendsResult:
    mode: Literal["trends"]
    interval: str
    order: str
    window_seconds: int
    points: list[FunnelTrendPoint]
    sampled: float | None = None
    exclusions: list[FunnelExclusion] | None = None


@dataclass(frozen=True)
class TimeBin:
    #: ``[start_seconds, end_seconds)``; the last bin also holds ``end_seconds``.
    start_seconds: int
    end_seconds: int
    count: Count


@dataclass(frozen=True)
class FunnelTimeToConvertResult:
    mode: Literal["time_to_convert"]
    from_step: int
    to_step: int
    order: str
    window_seconds: int
    #: Persons whose chosen attempt reached ``to_step``: the ones measured.
    converted: Count
    average_seconds: float | None
    median_seconds: float | None
    histogram: list[TimeBin]
    sampled: float | None = None
    exclusions: list[FunnelExclusion] | None = None


def _int(value: int) -> ColumnElement[int]:
    return literal_column(str(value), Integer)


def _check(
    steps: list[FunnelStep], window_seconds: int, order: str, exclusions: list[FunnelExclusion]
) -> None:
    _validate(steps, window_seconds, order, 10)
    _validate_exclusions(steps, exclusions, order)


def funnel_trends(
    ctx: ReportContext,
    steps: list[FunnelStep],
    *,
    interval: str = "day",
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
    order: str = "ordered",
    exclusions: list[FunnelExclusion] | None = None,
) -> FunnelTrendsResult:
    """Per entry period: persons entering, persons converting (reaching the last step within
    the window from an entry in that period), and their ratio."""
    _check(steps, window_seconds, order, exclusions or [])
    if interval not in TREND_INTERVALS:
        raise ValidationError("interval", f"must be one of {', '.join(TREND_INTERVALS)}")
    buckets = ctx.buckets(interval)
    window = window_seconds * _MICROS
    n = len(steps)
    if is_clickhouse():
        from ..engines.clickhouse.funnel_modes import trend_rows

        found = trend_rows(ctx, steps, window, order, exclusions or [], buckets)
    else:
        chains = _chains(ctx, steps, window, order, None, exclusions or [])
        per_person = (
            select(
                chains.c.person_id,
                buckets.index(chains.c.t1).label("period"),
                chains.c.level,
            )
        ).subquery("entered")
        person_period = (
            select(
                per_person.c.period,
                func.max(per_person.c.level).label("level"),
            )
            .group_by(per_person.c.person_id, per_person.c.period)
            .subquery("person_period")
        )
        query = select(
            person_period.c.period,
            func.count().label("entered"),
            func.sum(case((person_period.c.level >= n, 1), else_=0)).label("converted"),
        ).group_by(person_period.c.period)
        with report_connection() as connection:
            found = list(connection.execute(query))
    cells = {int(r.period): (int(r.entered), int(r.converted or 0)) for r in found}
    points = []
    for i, label in enumerate(buckets.labels()):
        entered, converted = cells.get(i, (0, 0))
        points.append(
            FunnelTrendPoint(
                label,
                ctx.scale(entered),
                ctx.scale(converted),
                converted / entered if entered else 0.0,
            )
        )
    return FunnelTrendsResult(
        "trends", interval, order, window_seconds, points, ctx.sample, exclusions or None
    )


def funnel_time_to_convert(
    ctx: ReportContext,
    steps: list[FunnelStep],
    *,
    from_step: int = 0,
    to_step: int | None = None,
    bins: int = DEFAULT_BINS,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
    order: str = "ordered",
    exclusions: list[FunnelExclusion] | None = None,
) -> FunnelTimeToConvertResult:
    """Average, median and histogram of the seconds from ``from_step`` to ``to_step`` (0-based;
    ``to_step`` defaults to the last step) of the persons whose chosen attempt reached
    ``to_step``."""
    _check(steps, window_seconds, order, exclusions or [])
    last = len(steps) - 1
    to_step = last if to_step is None else to_step
    if not 0 <= from_step < last:
        raise ValidationError("from_step", f"must be between 0 and {last - 1}")
    if not from_step < to_step <= last:
        raise ValidationError("to_step", f"must be between {from_step + 1} and {last}")
    if not 1 <= bins <= MAX_BINS:
        raise ValidationError("bins", f"must be between 1 and {MAX_BINS}")
    window = window_seconds * _MICROS
    if is_clickhouse():
        from ..engines.clickhouse.funnel_modes import time_rows

        found = time_rows(ctx, steps, window, order, exclusions or [], from_step, to_step, bins)
    else:
        chains = _chains(ctx, steps, window, order, None, exclusions or [])
        with report_connection() as connection:
            found = list(connection.execute(_time_query(chains, from_step, to_step, bins)))
    converted = sum(int(r.n) for r in found)
    average = median = None
    histogram: list[TimeBin] = []
    if converted:
        total = sum(int(r.total) for r in found)
        mid_sum = sum(int(r.mid_sum or 0) for r in found)
        mid_n = sum(int(r.mid_n or 0) for r in found)
        average = total / converted / _MICROS
        median = mid_sum / mid_n / _MICROS
        start, width = int(found[0].start_s), int(found[0].width_s)
        counts = {int(r.bin): int(r.n) for r in found}
        histogram = [
            TimeBin(start + i * width, start + (i + 1) * width, ctx.scale(counts.get(i, 0)))
            for i in range(bins)
        ]
    return FunnelTimeToConvertResult(
        "time_to_convert",
        from_step,
        to_step,
        order,
        window_seconds,
        ctx.scale(converted),
        average,
        median,
        histogram,
        ctx.sample,
        exclusions or None,
    )


def _time_query(chains: Any, from_step: int, to_step: int, bins: int) -> Any:
    """Per histogram bin: ``bin, n, total, start_s, width_s, mid_sum, mid_n`` (the middle
    values' sum and count of the whole distribution, split over the bins holding them)."""
    best = _best_attempts(chains)
    delta = best.c[f"t{to_step + 1}"] - best.c[f"t{from_step + 1}"]
    deltas = select(delta.label("delta")).where(best.c.level >= to_step + 1).subquery("deltas")
    everything: dict[str, Any] = {}
    ranked = select(
        deltas.c.delta,
        func.row_number().over(order_by=deltas.c.delta).label("rn"),
        func.count().over(**everything).label("cnt"),
        (func.min(deltas.c.delta).over(**everything) // _int(_MICROS)).label("start_s"),
        func.max(deltas.c.delta).over(**everything).label("hi"),
    ).subquery("ranked")
    span = _int(bins * _MICROS)
    width = _greatest(
        _int(1), (ranked.c.hi - ranked.c.start_s * _int(_MICROS) + span - _int(1)) // span
    )
    sized = select(ranked, width.label("width_s")).subquery("sized")
    raw_bin = (sized.c.delta - sized.c.start_s * _int(_MICROS)) // (sized.c.width_s * _int(_MICROS))
    binned = select(
        sized,
        case((raw_bin > bins - 1, _int(bins - 1)), else_=raw_bin).label("bin"),
        case((_middle(sized.c.rn, sized.c.cnt), 1), else_=0).label("middle"),
    ).subquery("binned")
    return select(
        binned.c.bin,
        func.count().label("n"),
        func.sum(binned.c.delta).label("total"),
        func.max(binned.c.start_s).label("start_s"),
        func.max(binned.c.width_s).label("width_s"),
        func.sum(case((binned.c.middle == 1, binned.c.delta))).label("mid_sum"),
        func.sum(binned.c.middle).label("mid_n"),
    ).group_by(binned.c.bin)


def _middle(rn: ColumnElement[Any], cnt: ColumnElement[Any]) -> ColumnElement[bool]:
    """The one or two middle rows of ``cnt`` rows numbered ``rn`` from 1 (the funnel's rule)."""
    return (2 * rn >= cnt) & (2 * rn <= cnt + 2)
