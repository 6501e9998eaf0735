"""Cohorts by first-seen period: how many persons were first seen in each day, week or month.

A person's first-seen moment is their earliest event over all time, across every distinct id
merged into them (so an ``identify`` done later moves them retroactively). Periods are calendar
periods in ``UMETRICS_TIMEZONE`` (weeks start on Monday); like retention cohorts, a period is
shown when its start lies inside ``[date_from, date_to)`` and its size covers the whole period.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from .buckets import Buckets
from .connection import report_connection
from .context import ReportContext
from .sql import person_events

PERIODS: tuple[str, ...] = ("day", "week", "month")


@dataclass(frozen=True)
class Cohort:
    start: str
    size: float


@dataclass(frozen=True)
class CohortsResult:
    period: str
    cohorts: list[Cohort]
    sampled: float | None = None


def first_seen_cohorts(ctx: ReportContext, *, period: str = "week") -> CohortsResult:
    """One zero-filled cohort per period; property filters narrow which events count as
    "seen" (a person's first matching event)."""
    if period not in PERIODS:
        raise ValidationError("period", f"must be one of {', '.join(PERIODS)}")
    covering = ctx.buckets(period, field="period")
    starts = tuple(start for start in covering.starts if start >= ctx.date_from)
    buckets = Buckets(period, ctx.zone, starts, covering.end)
    if is_clickhouse():
        from ..engines.clickhouse.cohorts import first_seen_sizes

        sizes = first_seen_sizes(ctx, buckets)
    else:
        sizes = _sql_sizes(ctx, buckets)
    cohorts = [
        Cohort(label, ctx.scale(sizes.get(i, 0))) for i, label in enumerate(buckets.labels())
    ]
    return CohortsResult(period, cohorts, ctx.sample)


def _sql_sizes(ctx: ReportContext, buckets: Buckets) -> dict[int, int]:
    """The SQL engine's ``{cohort index: persons first seen in it}``."""
    base = person_events(ctx.scope_id).where(*ctx.event_filters())
    seen = ctx.rows(base, "seen")
    first = (
        select(seen.c.person_id, func.min(seen.c.ts).label("first_ts"))
        .group_by(seen.c.person_id)
        .subquery("first_seen")
    )
    cohort = buckets.index(first.c.first_ts).label("cohort")
    query = (
        select(cohort, func.count().label("n"))
        .where(first.c.first_ts >= buckets.start_us, first.c.first_ts < buckets.end_us)
        .group_by(cohort)
    )
    with report_connection() as connection:
        return {row.cohort: row.n for row in connection.execute(query)}
