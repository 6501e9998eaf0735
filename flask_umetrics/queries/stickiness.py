"""Stickiness: how many persons did the event in exactly ``1, 2, ... N`` periods of the range.

PostHog's definition (docs/trends-lifecycle-stickiness.md): a person's number is how many
distinct periods (calendar hours, days, Monday weeks or months of the scope's time zone) of the
range hold at least one of their events; ``N`` is the number of periods of the range. Only events
inside ``[date_from, date_to)`` count (by default any active event, report filters applied), so
the bars add up to the persons who did the event in the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.sql import Select

from ..db.tables import events
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from .buckets import INTERVALS, Buckets
from .compare import check_compare, previous_context
from .connection import report_connection
from .context import Count, ReportContext
from .persons import PersonSource
from .sql import person_events


@dataclass(frozen=True)
class StickinessBar:
    periods: int  # on exactly this many periods of the range
    persons: Count


@dataclass(frozen=True)
class StickinessResult:
    interval: str
    bars: list[StickinessBar]  # periods = 1 .. number of periods of the range
    persons: Count  # who did the event at all: the sum of the bars
    event: str | None = None
    sampled: float | None = None
    #: With ``compare="previous"``: this report over the previous range (``compare.py``).
    previous: StickinessResult | None = None


def stickiness(
    ctx: ReportContext,
    *,
    event: str | None = None,
    interval: str = "day",
    compare: str | None = None,
) -> StickinessResult:
    """Every bar ``1..N`` present (zero-filled)."""
    check_compare(compare)
    if interval not in INTERVALS:
        raise ValidationError("interval", f"must be one of {', '.join(INTERVALS)}")
    buckets = ctx.buckets(interval)
    if is_clickhouse():
        from ..engines.clickhouse.stickiness import counts as clickhouse_counts

        found = clickhouse_counts(ctx, buckets, event)
    else:
        per_person = _per_person(ctx, buckets, event).subquery("per_person")
        query = select(per_person.c.n, func.count()).group_by(per_person.c.n)
        with report_connection() as connection:
            found = {int(n): int(persons) for n, persons in connection.execute(query)}
    bars = [StickinessBar(n, ctx.scale(found.get(n, 0))) for n in range(1, len(buckets.starts) + 1)]
    previous = None
    if compare == "previous":
        previous = stickiness(previous_context(ctx, interval), event=event, interval=interval)
    persons = ctx.scale(sum(found.values()))
    return StickinessResult(interval, bars, persons, event, ctx.sample, previous)


def _per_person(ctx: ReportContext, buckets: Buckets, event: str | None) -> Select[Any]:
    """Per person who did the event in the range: ``n``, the periods they did it in, and
    ``at``, their first such event."""
    chosen = events.c.active.is_(True) if event is None else events.c.event == event
    base = person_events(ctx.scope_id).where(chosen, *ctx.in_range(), *ctx.event_filters())
    person_id = base.selected_columns.person_id
    return (
        base.where(*ctx.sampled(person_id))
        .with_only_columns(
            person_id,
            func.count(buckets.index(events.c.ts).distinct()).label("n"),
            func.min(events.c.ts).label("at"),
        )
        .group_by(person_id)
    )


def stickiness_persons(
    ctx: ReportContext, *, periods: int, event: str | None = None, interval: str = "day"
) -> PersonSource:
    """The persons behind bar ``periods``: who did the event in exactly that many periods of the
    range (the report's own per-person count). ``at``: their first such event."""
    if interval not in INTERVALS:
        raise ValidationError("interval", f"must be one of {', '.join(INTERVALS)}")
    buckets = ctx.buckets(interval)
    if not 1 <= periods <= len(buckets.starts):
        raise ValidationError("periods", f"must be between 1 and {len(buckets.starts)}")
    if is_clickhouse():
        from ..engines.clickhouse.stickiness import persons_sql

        return PersonSource.clickhouse(*persons_sql(ctx, buckets, event, periods))
    per_person = _per_person(ctx, buckets, event).subquery("per_person")
    return PersonSource.sql(
        select(per_person.c.person_id, per_person.c.at).where(per_person.c.n == periods)
    )
