"""Sessions: a person's visits, built in SQL from their active events.

Events carrying a client ``session_id`` form one session per (person, session_id), whatever the
gaps. A person's active events without one are split where the gap to the previous such event
exceeds ``UMETRICS_SESSION_TIMEOUT`` seconds (a gap of exactly the timeout does not split); the
two kinds never mix. ``active=false`` events never form or extend a session. A session belongs
to a report when its first event is in ``[date_from, date_to)``; its later events may fall after
``date_to``. Duration = last - first event; a bounce is a one-event session.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, case, cast, func, null, or_, select, union_all
from sqlalchemy.sql import ColumnElement, Subquery

from ..db.tables import events, person_distinct_ids
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from ..events.validation import from_micros
from ..state import current_state
from .connection import report_connection
from .context import Count, ReportContext
from .sql import person_events

MICROS = 1_000_000


def session_timeout_us() -> int:
    """``UMETRICS_SESSION_TIMEOUT`` in microseconds (the unit of ``umetrics_events.ts``)."""
    return int(current_state().settings["UMETRICS_SESSION_TIMEOUT"]) * MICROS


def starts_session(
    ts: ColumnElement[Any], previous_ts: ColumnElement[Any], timeout_us: int
) -> ColumnElement[bool]:
    """The split rule for events without a client ``session_id``: a person's first such event
    starts a session, and so does one more than the timeout after the previous one."""
    return or_(previous_ts.is_(None), ts - previous_ts > timeout_us)


def session_table(
    scope_id: str,
    *,
    conditions: Sequence[ColumnElement[bool]] = (),
    since_us: int | None = None,
    until_us: int | None = None,
    pageview_event: str = "$pageview",
    name: str = "sessions",
) -> Subquery:
    """One row per session: ``person_id``, ``session_id`` (NULL for timeout-split sessions),
    ``start_ts``, ``end_ts``, ``events``, ``pageviews``.

    ``conditions`` restrict the events used (filters, sampling, one person). With ``since_us``
    (and ``until_us``), only sessions starting in ``[since_us, until_us)`` are guaranteed; they
    are exact: a timeout-split session's start only depends on the previous event, so events
    older than ``since_us - timeout`` are never read, and a client session starting in the
    range has an event in it, so only session ids seen in the range are aggregated.
    """
    timeout = session_timeout_us()
    pageview = case((events.c.event == pageview_event, 1), else_=0)
    base = person_events(scope_id).where(events.c.active.is_(True), *conditions)

    loose_query = base.where(events.c.session_id.is_(None))
    if since_us is not None:
        loose_query = loose_query.where(events.c.ts >= since_us - timeout)
    loose = loose_query.with_only_columns(
        person_distinct_ids.c.person_id, events.c.ts, events.c.id, pageview.label("pv")
    ).subquery("loose")
    previous = func.lag(loose.c.ts).over(
        partition_by=loose.c.person_id, order_by=(loose.c.ts, loose.c.id)
    )
    is_start = case((starts_session(loose.c.ts, previous, timeout), 1), else_=0)
    marked = select(
        loose.c.person_id, loose.c.ts, loose.c.id, loose.c.pv, is_start.label("is_start")
    ).subquery("marked")
    numbered = select(
        marked.c.person_id,
        marked.c.ts,
        marked.c.pv,
        func.sum(marked.c.is_start)
        .over(
            partition_by=marked.c.person_id,
            order_by=(marked.c.ts, marked.c.id),
            rows=(None, 0),
        )
        .label("seq"),
    ).subquery("numbered")
    split = select(
        numbered.c.person_id,
        cast(null(), String(200)).label("session_id"),
        func.min(numbered.c.ts).label("start_ts"),
        func.max(numbered.c.ts).label("end_ts"),
        func.count().label("events"),
        func.sum(numbered.c.pv).label("pageviews"),
    ).group_by(numbered.c.person_id, numbered.c.seq)

    # Client sessions are read over all time: their first event may be long before any bound.
    client_query = base.where(events.c.session_id.is_not(None))
    if since_us is not None:
        in_range = events.alias("in_range")
        seen = select(in_range.c.session_id).where(
            in_range.c.scope_id == scope_id,
            in_range.c.ts >= since_us,
            in_range.c.session_id.is_not(None),
        )
        if until_us is not None:
            seen = seen.where(in_range.c.ts < until_us)
        client_query = client_query.where(events.c.session_id.in_(seen))
    client = client_query.with_only_columns(
        person_distinct_ids.c.person_id,
        events.c.session_id,
        func.min(events.c.ts).label("start_ts"),
        func.max(events.c.ts).label("end_ts"),
        func.count().label("events"),
        func.sum(pageview).label("pageviews"),
    ).group_by(person_distinct_ids.c.person_id, events.c.session_id)
    return union_all(split, client).subquery(name)


def report_sessions(ctx: ReportContext, pageview_event: str) -> Subquery:
    """:func:`session_table` of a report: its filters and persons, exact for the sessions
    starting in its range (callers keep those)."""
    return session_table(
        ctx.scope_id,
        conditions=[*ctx.event_filters(), *ctx.sampled(person_distinct_ids.c.person_id)],
        since_us=ctx.from_us,
        until_us=ctx.to_us,
        pageview_event=pageview_event,
    )


@dataclass(frozen=True)
class SessionSummary:
    count: Count
    median_duration: float
    mean_duration: float
    bounce_rate: float
    pageviews_per_session: float
    sampled: float | None = None


def session_summary(ctx: ReportContext, *, pageview_event: str = "$pageview") -> SessionSummary:
    """Sessions starting in the range: count, median and mean duration (seconds), the share of
    one-event sessions, and ``pageview_event`` events per session (zeros when there are none)."""
    return session_summaries([ctx], pageview_event=pageview_event)[0]


def session_summaries(
    contexts: Sequence[ReportContext], *, pageview_event: str = "$pageview"
) -> list[SessionSummary]:
    """:func:`session_summary` of each context, contexts that differ only in their range (a
    report's and its previous range's): on ClickHouse one statement for all."""
    if not pageview_event:
        raise ValidationError("pageview_event", "must not be empty")
    first = contexts[0]
    if any(
        dataclasses.replace(ctx, date_from=first.date_from, date_to=first.date_to) != first
        for ctx in contexts
    ):
        raise ValueError("session_summaries: the contexts differ in more than their range")
    if is_clickhouse():
        from ..engines.clickhouse import sessions as clickhouse

        found = clickhouse.summaries(
            first,
            [(ctx.from_us, ctx.to_us) for ctx in contexts],
            timeout_us=session_timeout_us(),
            pageview_event=pageview_event,
        )
    else:
        found = [_sql_summary(ctx, pageview_event) for ctx in contexts]
    return [_summary(ctx, *numbers) for ctx, numbers in zip(contexts, found, strict=True)]


def _summary(
    ctx: ReportContext,
    count: Any,
    total_us: Any,
    bounces: Any,
    pageviews: Any,
    middle_us: Any,
    middle_n: Any,
) -> SessionSummary:
    if not count:
        return SessionSummary(0, 0.0, 0.0, 0.0, 0.0, ctx.sample)
    return SessionSummary(
        count=ctx.scale(count),
        median_duration=int(middle_us) / middle_n / MICROS,
        mean_duration=int(total_us) / count / MICROS,
        bounce_rate=int(bounces) / count,
        pageviews_per_session=int(pageviews) / count,
        sampled=ctx.sample,
    )


def _sql_summary(ctx: ReportContext, pageview_event: str) -> tuple[Any, ...]:
    """The SQL engine's ``(count, total µs, bounces, pageviews, middle µs, middle count)``."""
    sessions = report_sessions(ctx, pageview_event)
    chosen = select(
        (sessions.c.end_ts - sessions.c.start_ts).label("duration"),
        sessions.c.events,
        sessions.c.pageviews,
    ).where(sessions.c.start_ts >= ctx.from_us, sessions.c.start_ts < ctx.to_us)
    chosen_rows = chosen.subquery("chosen")
    totals = select(
        func.count(),
        func.coalesce(func.sum(chosen_rows.c.duration), 0),
        func.coalesce(func.sum(case((chosen_rows.c.events == 1, 1), else_=0)), 0),
        func.coalesce(func.sum(chosen_rows.c.pageviews), 0),
    )
    ranked = select(
        chosen_rows.c.duration,
        func.row_number().over(order_by=chosen_rows.c.duration).label("rn"),
        func.count().over().label("n"),
    ).subquery("ranked")
    # The middle row (odd count) or the two middle rows (even count); integers on both databases.
    middle = select(func.coalesce(func.sum(ranked.c.duration), 0), func.count()).where(
        or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2)
    )
    with report_connection() as connection:
        count, total_us, bounces, pageviews = connection.execute(totals).one()
        middle_us, middle_n = connection.execute(middle).one()
    return (count, total_us, bounces, pageviews, middle_us, middle_n)


@dataclass(frozen=True)
class PersonSession:
    start: str
    end: str
    duration: float
    events: int
    session_id: str | None
    #: Set with ``$session_props`` events (open-metrics' ``setSessionProps``), later wins.
    properties: dict[str, Any] = field(default_factory=dict)


#: The event that carries session properties: inactive, so it never forms or extends a session;
#: it belongs to the session whose span, widened by the session timeout, holds its time.
SESSION_PROPS_EVENT = "$session_props"


def sessions_of_person(
    scope_id: str, person_id: int, limit: int = 20, *, started_by_us: int | None = None
) -> list[PersonSession]:
    """A person's most recent ``limit`` sessions (over all time), newest first; with
    ``started_by_us``, only those that started at or before it (a timeline page's cursor)."""
    if is_clickhouse():
        from ..engines.clickhouse import sessions as clickhouse

        found = clickhouse.person_sessions(
            scope_id,
            person_id,
            timeout_us=session_timeout_us(),
            limit=limit,
            started_by_us=started_by_us,
        )
        spans = [(int(start), int(end)) for start, end, _, _ in found]
        props = _assign_props(spans, clickhouse_session_props(scope_id, person_id, spans))
        return [
            PersonSession(
                start=from_micros(start).isoformat(),
                end=from_micros(end).isoformat(),
                duration=(end - start) / MICROS,
                events=int(count),
                session_id=session_id,
                properties=props[index],
            )
            for index, (start, end, count, session_id) in enumerate(found)
        ]
    sessions = session_table(scope_id, conditions=[person_distinct_ids.c.person_id == person_id])
    query = select(sessions).order_by(
        sessions.c.start_ts.desc(),
        sessions.c.end_ts.desc(),
        sessions.c.session_id.asc().nulls_first(),
    )
    if started_by_us is not None:
        query = query.where(sessions.c.start_ts <= started_by_us)
    with report_connection() as connection:
        rows: list[Any] = list(connection.execute(query.limit(limit)))
        props = _session_props(connection, scope_id, person_id, rows)
    return [
        PersonSession(
            start=from_micros(row.start_ts).isoformat(),
            end=from_micros(row.end_ts).isoformat(),
            duration=(row.end_ts - row.start_ts) / MICROS,
            events=row.events,
            session_id=row.session_id,
            properties=props[index],
        )
        for index, row in enumerate(rows)
    ]


def _props_window(spans: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The time range holding every ``$session_props`` event of ``spans`` (widened)."""
    timeout = session_timeout_us()
    return min(s for s, _ in spans) - timeout, max(e for _, e in spans) + timeout


def _session_props(
    connection: Any, scope_id: str, person_id: int, rows: Sequence[Any]
) -> list[dict[str, Any]]:
    """Each session's properties from the SQL store (see :func:`_assign_props`)."""
    spans = [(int(row.start_ts), int(row.end_ts)) for row in rows]
    if not spans:
        return []
    low, high = _props_window(spans)
    query = (
        person_events(scope_id)
        .where(
            person_distinct_ids.c.person_id == person_id,
            events.c.event == SESSION_PROPS_EVENT,
            events.c.ts >= low,
            events.c.ts <= high,
        )
        .order_by(events.c.ts, events.c.id)
    )
    found = [(int(r.ts), r.properties) for r in connection.execute(query)]
    return _assign_props(spans, found)


def clickhouse_session_props(
    scope_id: str, person_id: int, spans: Sequence[tuple[int, int]]
) -> list[tuple[int, Any]]:
    """The person's ``$session_props`` events around ``spans`` from ClickHouse, oldest first."""
    if not spans:
        return []
    from ..engines.clickhouse.sessions import person_session_props

    low, high = _props_window(spans)
    found = person_session_props(scope_id, person_id, SESSION_PROPS_EVENT, low, high)
    return [(int(us), json.loads(text) if text else None) for us, text in found]


def _assign_props(
    spans: Sequence[tuple[int, int]], found: Sequence[tuple[int, Any]]
) -> list[dict[str, Any]]:
    """Each session's properties: the ``$session_props`` events (``found``, oldest first)
    within its span widened by the session timeout (the newest session first, as ``spans``
    are; an event goes to the first session holding it), merged oldest first."""
    merged: list[dict[str, Any]] = [{} for _ in spans]
    timeout = session_timeout_us()
    for ts, properties in found:
        for index, (start, end) in enumerate(spans):
            if start - timeout <= ts <= end + timeout:
                if isinstance(properties, dict):
                    merged[index].update(properties)
                break
    return merged
