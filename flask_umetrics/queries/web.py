"""Web analytics on one page (Plausible's and Umami's first screen), from ``$pageview`` events.

Definitions (docs/web-analytics.md):

- A **page view** is an active ``$pageview`` event in ``[date_from, date_to)`` matching the
  report's filters; **visitors** are the distinct persons (merged distinct ids count once) of
  those page views.
- **Sessions**, **bounce rate** and **visit duration** (the mean, seconds) are
  ``queries/sessions.py``'s summary of the same context: sessions starting in the range.
- Each number comes with the previous range's (``compare.py``, by days) and the change.
- **Pages**, **browsers**, **operating systems** and **device types** group the page views by
  ``$pathname``, ``$browser``, ``$os``, ``$device_type`` (set at ingestion from the user agent,
  ``events/user_agent.py``): visitors and page views per value.
- **Entry** and **exit pages**, **referrers**, **UTM source / medium / campaign** and
  **channels** group the sessions starting in the range that hold a page view, by their first
  page view (their last, for exit pages): visitors, and the page views of those sessions.
  Referrer, UTM and channel are ``queries/attribution.py``'s touchpoint fields and channel rules
  (``direct`` without UTM or external referrer).
- Rows: by visitors, then page views (descending), then key; ``limit`` of each. Events without
  the property are left out of its breakdown.
- Bots dropped at ingestion are not events: their counts come from ``umetrics_filtered_events``
  over the local days of the range.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.sql import ColumnElement, Select

from ..db.tables import events
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from ..events.filtered import filtered_totals
from ..state import current_state
from .attribution import channel_of, own_host_names, touch_fields, with_hosts
from .buckets import INTERVALS, Buckets
from .compare import previous_context
from .connection import report_connection
from .context import Count, ReportContext
from .sessions import SessionSummary, report_sessions, session_summaries
from .sql import person_events, prop_text

PAGEVIEW = "$pageview"
#: Page view breakdowns: the property grouped by.
PAGEVIEW_BREAKDOWNS: dict[str, str] = {
    "pages": "$pathname",
    "browsers": "$browser",
    "operating_systems": "$os",
    "device_types": "$device_type",
}
#: Session breakdowns: the column of the session's entry (or exit) page view grouped by.
SESSION_BREAKDOWNS: dict[str, str] = {
    "entry_pages": "page",
    "exit_pages": "page",
    "referrers": "ext_host",
    "utm_sources": "source",
    "utm_mediums": "medium",
    "utm_campaigns": "campaign",
    "channels": "channel",
}
BREAKDOWNS: tuple[str, ...] = (*PAGEVIEW_BREAKDOWNS, *SESSION_BREAKDOWNS)
MAX_LIMIT = 100

#: ``(key, visitors, page views)`` rows of one breakdown, as the engines return them.
Raw = list[tuple[Any, Any, Any]]


@dataclass(frozen=True)
class WebRow:
    key: str
    visitors: Count
    pageviews: Count


@dataclass(frozen=True)
class WebPoint:
    date: str  # the bucket's start
    visitors: Count
    pageviews: Count


@dataclass(frozen=True)
class WebTotals:
    visitors: Count
    pageviews: Count
    sessions: Count
    bounce_rate: float  # bounces / sessions, 0..1
    visit_duration: float  # mean session duration, seconds


@dataclass(frozen=True)
class WebResult:
    totals: WebTotals
    #: The same numbers over the previous range of as many days.
    previous: WebTotals
    #: ``(now - before) / before`` per number (``None`` when ``before`` is 0); for the bounce
    #: rate the difference ``now - before`` (percentage points / 100).
    change: dict[str, float | None]
    interval: str
    series: list[WebPoint]
    breakdowns: dict[str, list[WebRow]]
    #: Events dropped at ingestion over the local days of the range (``bot``, ``dnt``).
    filtered: dict[str, int]
    limit: int = 10
    sampled: float | None = None


@dataclass(frozen=True)
class Counts:
    """An engine's unscaled page view numbers of one overview."""

    #: ``(visitors, page views)`` of the range, and of the previous range.
    totals: tuple[int, int]
    previous: tuple[int, int]
    #: ``(visitors, page views)`` by bucket index (buckets without page views left out).
    series: dict[int, tuple[int, int]]
    #: Each breakdown's top ``limit`` rows, in ``BREAKDOWNS`` order.
    breakdowns: dict[str, Raw]


def web_overview(
    ctx: ReportContext,
    *,
    interval: str = "day",
    limit: int = 10,
    own_hosts: tuple[str, ...] = (),
) -> WebResult:
    if interval not in INTERVALS:
        raise ValidationError("interval", f"must be one of {', '.join(INTERVALS)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be between 1 and {MAX_LIMIT}")
    hosts = own_host_names(own_hosts)
    buckets = ctx.buckets(interval)
    before = previous_context(ctx, "day")
    if is_clickhouse():
        from ..engines.clickhouse.web import counts
    else:
        counts = sql_counts
    found = counts(ctx, before, buckets, limit, hosts)
    series = [
        WebPoint(label, *(ctx.scale(n) for n in found.series.get(index, (0, 0))))
        for index, label in enumerate(buckets.labels())
    ]
    breakdowns = {
        name: [WebRow(str(key), ctx.scale(v), ctx.scale(p)) for key, v, p in rows]
        for name, rows in found.breakdowns.items()
    }
    now, then = session_summaries([ctx, before], pageview_event=PAGEVIEW)
    totals = _totals(ctx, found.totals, now)
    previous = _totals(before, found.previous, then)
    return WebResult(
        totals=totals,
        previous=previous,
        change=_change(totals, previous),
        interval=interval,
        series=series,
        breakdowns=breakdowns,
        filtered=_filtered(ctx),
        limit=limit,
        sampled=ctx.sample,
    )


def _totals(ctx: ReportContext, pageviews: tuple[int, int], summary: SessionSummary) -> WebTotals:
    visitors, views = pageviews
    return WebTotals(
        visitors=ctx.scale(visitors),
        pageviews=ctx.scale(views),
        sessions=summary.count,
        bounce_rate=summary.bounce_rate,
        visit_duration=summary.mean_duration,
    )


def _change(now: WebTotals, before: WebTotals) -> dict[str, float | None]:
    change: dict[str, float | None] = {}
    for name, value in dataclasses.asdict(now).items():
        old = getattr(before, name)
        if name == "bounce_rate":
            change[name] = value - old
        else:
            change[name] = None if not old else (value - old) / old
    return change


def _filtered(ctx: ReportContext) -> dict[str, int]:
    first = ctx.date_from.astimezone(ctx.zone).date()
    last = (ctx.date_to - timedelta(microseconds=1)).astimezone(ctx.zone).date()
    return filtered_totals(current_state().engine, ctx.scope_id, first, last)


def _pageviews(ctx: ReportContext) -> Select[Any]:
    """The report's page views: ``person_id``, ``ts``, ``properties`` (and the rest of
    ``person_events``)."""
    base = person_events(ctx.scope_id).where(
        events.c.event == PAGEVIEW, events.c.active.is_(True), *ctx.in_range(), *ctx.event_filters()
    )
    return base.where(*ctx.sampled(base.selected_columns.person_id))


def _ranked(key: ColumnElement[Any], person: ColumnElement[Any], views: ColumnElement[Any]) -> Any:
    """``key, visitors, pageviews`` columns for a grouped query, and its order."""
    visitors = func.count(person.distinct())
    return (key, visitors, views), (visitors.desc(), views.desc(), key.asc())


def sql_counts(
    ctx: ReportContext,
    before: ReportContext,
    buckets: Buckets,
    limit: int,
    hosts: tuple[str, ...],
) -> Counts:
    """The SQL engine (SQLite, PostgreSQL); ``engines/clickhouse/web.py:counts`` is its twin."""
    return Counts(
        totals=_pageview_totals(ctx),
        previous=_pageview_totals(before),
        series=_series(ctx, buckets),
        breakdowns=_breakdowns(ctx, limit, hosts),
    )


def _pageview_totals(ctx: ReportContext) -> tuple[int, int]:
    rows = _pageviews(ctx).subquery("pageviews")
    query = select(func.count(rows.c.person_id.distinct()), func.count())
    with report_connection() as connection:
        visitors, views = connection.execute(query).one()
    return int(visitors), int(views)


def _series(ctx: ReportContext, buckets: Buckets) -> dict[int, tuple[int, int]]:
    rows = _pageviews(ctx).subquery("pageviews")
    index = buckets.index(rows.c.ts).label("bucket")
    query = select(index, func.count(rows.c.person_id.distinct()), func.count()).group_by(index)
    with report_connection() as connection:
        return {int(i): (int(v), int(p)) for i, v, p in connection.execute(query)}


def _breakdowns(ctx: ReportContext, limit: int, hosts: tuple[str, ...]) -> dict[str, Raw]:
    found: dict[str, Raw] = {}
    views = _pageviews(ctx).subquery("pageviews")
    with report_connection() as connection:
        for name, key_name in PAGEVIEW_BREAKDOWNS.items():
            key = prop_text(views.c.properties, key_name)
            columns, order = _ranked(key, views.c.person_id, func.count())
            query = select(*columns).where(key.is_not(None)).group_by(key).order_by(*order)
            found[name] = [tuple(r) for r in connection.execute(query.limit(limit))]
        visits = _visits(ctx, hosts)
        for name, column in SESSION_BREAKDOWNS.items():
            edge = visits.c.first if name != "exit_pages" else visits.c.last
            key = visits.c[column]
            columns, order = _ranked(key, visits.c.person_id, func.sum(visits.c.pageviews))
            query = (
                select(*columns).where(edge == 1, key.is_not(None)).group_by(key).order_by(*order)
            )
            found[name] = [tuple(r) for r in connection.execute(query.limit(limit))]
    return found


def _visits(ctx: ReportContext, hosts: tuple[str, ...]) -> Any:
    """Each page view of a session starting in the range, with its session's ``pageviews``,
    ``first`` / ``last`` (1 for the session's first / last page view by ``(ts, id)``), its
    ``page`` and touchpoint fields with ``ext_host`` and ``channel``."""
    sessions = report_sessions(ctx, PAGEVIEW)
    chosen = (
        select(sessions)
        .where(
            sessions.c.start_ts >= ctx.from_us,
            sessions.c.start_ts < ctx.to_us,
            sessions.c.pageviews > 0,
        )
        .subquery("chosen")
    )
    base = person_events(ctx.scope_id).where(
        events.c.event == PAGEVIEW, events.c.active.is_(True), *ctx.event_filters()
    )
    pv = base.subquery("views")
    same_session = or_(
        and_(pv.c.session_id.is_(None), chosen.c.session_id.is_(None)),
        pv.c.session_id == chosen.c.session_id,
    )
    session = (chosen.c.person_id, chosen.c.session_id, chosen.c.start_ts)
    joined = (
        select(
            chosen.c.person_id,
            chosen.c.pageviews,
            func.row_number()
            .over(partition_by=session, order_by=(pv.c.ts.asc(), pv.c.id.asc()))
            .label("first"),
            func.row_number()
            .over(partition_by=session, order_by=(pv.c.ts.desc(), pv.c.id.desc()))
            .label("last"),
            prop_text(pv.c.properties, "$pathname").label("page"),
            *touch_fields(pv.c.properties),
        )
        .select_from(
            chosen.join(
                pv,
                and_(
                    pv.c.person_id == chosen.c.person_id,
                    pv.c.ts >= chosen.c.start_ts,
                    pv.c.ts <= chosen.c.end_ts,
                    same_session,
                ),
            )
        )
        .subquery("visit_raw")
    )
    staged = with_hosts(joined, hosts)
    return select(*staged.c, channel_of(staged.c).label("channel")).subquery("visits")
