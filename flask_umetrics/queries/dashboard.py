"""The dashboard's headline numbers for a range, each from the report that defines it.

``total_events``: events in range; ``dau``/``wau``/``mau``: as of the range's last day (the day
containing ``date_to - 1µs``); ``new_persons``: persons whose first event ever is in range;
``sessions``: sessions starting in range; ``top_events``: the top 5 events. Property filters
and sampling apply to every number.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from ..engines.clickhouse.runner import is_clickhouse
from .active import active_user_series
from .connection import report_connection
from .context import Count, ReportContext
from .sessions import session_summary
from .sql import person_events
from .top import TopItem, top_events

TOP_EVENTS = 5


@dataclass(frozen=True)
class DashboardSummary:
    total_events: Count
    dau: Count
    wau: Count
    mau: Count
    new_persons: Count
    sessions: Count
    top_events: list[TopItem]
    sampled: float | None = None


def dashboard_summary(ctx: ReportContext) -> DashboardSummary:
    if is_clickhouse():
        from ..engines.clickhouse import cohorts as clickhouse

        total_events = clickhouse.events_in_range(ctx)
        new_persons = clickhouse.first_seen_in_range(ctx)
    else:
        total_events, new_persons = _sql_counts(ctx)
    last_day = dataclasses.replace(ctx, date_from=ctx.date_to - timedelta(microseconds=1))
    active = {
        window: active_user_series(last_day, window=window).series[-1].value
        for window in ("dau", "wau", "mau")
    }
    return DashboardSummary(
        total_events=ctx.scale(total_events),
        dau=active["dau"],
        wau=active["wau"],
        mau=active["mau"],
        new_persons=ctx.scale(new_persons),
        sessions=session_summary(ctx).count,
        top_events=top_events(ctx, limit=TOP_EVENTS).items,
        sampled=ctx.sample,
    )


def _sql_counts(ctx: ReportContext) -> tuple[int, int]:
    """The SQL engine's events in range and persons first seen in range."""
    everything = ctx.rows(person_events(ctx.scope_id).where(*ctx.event_filters()))
    total = select(func.count()).where(everything.c.ts >= ctx.from_us, everything.c.ts < ctx.to_us)
    firsts = (
        select(everything.c.person_id, func.min(everything.c.ts).label("first_ts"))
        .group_by(everything.c.person_id)
        .subquery("firsts")
    )
    new = select(func.count()).where(
        firsts.c.first_ts >= ctx.from_us, firsts.c.first_ts < ctx.to_us
    )
    with report_connection() as connection:
        total_events = connection.execute(total).scalar_one()
        new_persons = connection.execute(new).scalar_one()
    return int(total_events), int(new_persons)
