"""Sessions in ClickHouse SQL, with the rules of ``queries/sessions.py``: client sessions are
one per (person, session_id) over all time; the other active events of a person are split where
the gap to the previous one (ordered by ``(ts, seq)``, as SQL orders by ``(ts, id)``) exceeds the
timeout. The median is the SQL path's: the middle duration, or the mean of the two middle ones,
computed on the sorted integer durations (no sampled ``median``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .expressions import Params, bare_context, person_events, scope_param
from .runner import rows
from .schema import EVENTS

if TYPE_CHECKING:
    from ...queries.context import ReportContext


def starts_session(timeout: str) -> str:
    """The split rule of ``queries/sessions.py`` on ``us`` and ``previous_us`` (the previous
    event without a client session_id of the person, NULL for the first)."""
    return f"(previous_us IS NULL OR us - previous_us > {timeout})"


def session_table(
    ctx: ReportContext,
    params: Params,
    *,
    timeout_us: int,
    pageview_event: str,
    since_us: int | None = None,
    until_us: int | None = None,
    person_id: int | None = None,
) -> str:
    """A subquery, one row per session: ``person_id``, ``session_id`` (NULL for timeout-split
    ones), ``start_us``, ``end_us``, ``events``, ``pageviews``; exact for sessions starting in
    ``[since_us, until_us)`` (see the SQL ``session_table``)."""
    timeout = params.bind(timeout_us, "Int64")
    pageview = f"toUInt64(event = {params.bind(pageview_event, 'String')})"
    person = [] if person_id is None else [f"person_id = {params.bind(person_id, 'Int64')}"]
    loose_from = None if since_us is None else since_us - timeout_us
    loose = person_events(
        ctx, params, bounds=(loose_from, None), where=["active", "session_id IS NULL"]
    )
    client_where = ["active", "session_id IS NOT NULL"]
    if since_us is not None:
        scope = scope_param(ctx, params)
        seen = [
            f"scope_id = {scope}",
            f"toUnixTimestamp64Micro(ts) >= {params.bind(since_us, 'Int64')}",
            "session_id IS NOT NULL",
        ]
        if until_us is not None:
            seen.append(f"toUnixTimestamp64Micro(ts) < {params.bind(until_us, 'Int64')}")
        client_where.append(
            f"session_id IN (SELECT session_id FROM {EVENTS} WHERE {' AND '.join(seen)})"
        )
    client = person_events(ctx, params, bounds=(None, None), where=client_where)
    person_filter = f" WHERE {' AND '.join(person)}" if person else ""
    marked = (
        "SELECT person_id, us, pv, sum(is_start) OVER (PARTITION BY person_id ORDER BY us, seq "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session_no FROM ("
        f"SELECT person_id, us, seq, pv, if({starts_session(timeout)}, 1, 0) AS is_start FROM ("
        "SELECT person_id, us, seq, pv, lagInFrame(toNullable(us), 1, NULL) OVER (PARTITION BY "
        "person_id ORDER BY us, seq ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS previous_us "
        f"FROM (SELECT person_id, us, seq, {pageview} AS pv FROM {loose}{person_filter})))"
    )
    split = (
        "SELECT person_id, CAST(NULL AS Nullable(String)) AS session_key, min(us) AS start_us, "
        "max(us) AS end_us, count() AS events, sum(pv) AS pageviews "
        f"FROM ({marked}) GROUP BY person_id, session_no"
    )
    grouped = (
        "SELECT person_id, session_id AS session_key, min(us) AS start_us, max(us) AS end_us, "
        f"count() AS events, sum({pageview}) AS pageviews FROM {client}{person_filter} "
        "GROUP BY person_id, session_id"
    )
    return f"({split} UNION ALL {grouped})"


def summary(
    ctx: ReportContext, *, timeout_us: int, pageview_event: str
) -> tuple[int, int, int, int, int, int]:
    """``(count, total duration µs, bounces, pageviews, middle durations' sum, how many)`` of
    the sessions starting in the report's range."""
    params = Params()
    table = session_table(
        ctx,
        params,
        timeout_us=timeout_us,
        pageview_event=pageview_event,
        since_us=ctx.from_us,
        until_us=ctx.to_us,
    )
    start = params.bind(ctx.from_us, "Int64")
    stop = params.bind(ctx.to_us, "Int64")
    found = rows(
        "SELECT n, total, bounces, views, if(n = 0, 0, sorted[intDiv(n + 1, 2)] + "
        "if(n % 2 = 0, sorted[intDiv(n + 2, 2)], 0)), if(n % 2 = 0, 2, 1) FROM ("
        "SELECT count() AS n, sum(duration) AS total, countIf(events = 1) AS bounces, "
        "sum(pageviews) AS views, arraySort(groupArray(duration)) AS sorted FROM ("
        f"SELECT end_us - start_us AS duration, events, pageviews FROM {table} "
        f"WHERE start_us >= {start} AND start_us < {stop}))",
        params,
    )
    return tuple(int(v) for v in found[0])  # type: ignore[return-value]


def person_sessions(
    scope_id: str,
    person_id: int,
    *,
    timeout_us: int,
    limit: int,
    started_by_us: int | None,
) -> list[tuple[Any, ...]]:
    """``(start_us, end_us, events, session_id)`` of a person's newest ``limit`` sessions."""
    params = Params()
    ctx = bare_context(scope_id)
    table = session_table(
        ctx, params, timeout_us=timeout_us, pageview_event="$pageview", person_id=person_id
    )
    where = (
        ""
        if started_by_us is None
        else (f" WHERE start_us <= {params.bind(started_by_us, 'Int64')}")
    )
    return rows(
        f"SELECT start_us, end_us, events, session_key FROM {table}{where} "
        "ORDER BY start_us DESC, end_us DESC, session_key ASC NULLS FIRST "
        f"LIMIT {params.bind(limit, 'UInt32')}",
        params,
    )


def person_session_props(
    scope_id: str, person_id: int, event: str, low_us: int, high_us: int
) -> list[tuple[int, str]]:
    """``(ts_us, properties JSON)`` of a person's ``event`` events (``$session_props``) in
    ``[low_us, high_us]``, in ``(ts, seq)`` order (SQL orders them by ``(ts, id)``)."""
    params = Params()
    ctx = bare_context(scope_id)
    source = person_events(
        ctx,
        params,
        bounds=(low_us, high_us + 1),
        where=[f"event = {params.bind(event, 'String')}"],
    )
    return rows(
        f"SELECT us, properties FROM {source} "
        f"WHERE person_id = {params.bind(person_id, 'Int64')} ORDER BY us, seq",
        params,
    )
