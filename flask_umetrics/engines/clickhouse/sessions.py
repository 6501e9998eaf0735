"""Sessions in ClickHouse SQL, with the rules of ``queries/sessions.py``: client sessions are
one per (person, session_id) over all time; the other active events of a person are split where
the gap to the previous one (ordered by ``(ts, seq)``, as SQL orders by ``(ts, id)``) exceeds the
timeout. The median is the SQL path's: the middle duration, or the mean of the two middle ones,
computed on the sorted integer durations (no sampled ``median``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .expressions import Params, bare_context, person_events, scope_param
from .runner import rows
from .schema import EVENTS

if TYPE_CHECKING:
    from ...queries.context import ReportContext

#: A session summary's integers: ``(count, total duration µs, bounces, pageviews, middle
#: durations' sum, how many)``.
Summary = tuple[int, int, int, int, int, int]


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


def summaries(
    ctx: ReportContext,
    ranges: Sequence[tuple[int, int]],
    *,
    timeout_us: int,
    pageview_event: str,
) -> list[Summary]:
    """A :data:`Summary` of the sessions starting in each ``[from, to)`` (µs) of ``ranges``,
    with ``ctx``'s filters and persons, in one statement: one session table, exact over all of
    them, counted per range."""
    params = Params()
    low = min(start for start, _ in ranges)
    high = max(stop for _, stop in ranges)
    table = session_table(
        ctx,
        params,
        timeout_us=timeout_us,
        pageview_event=pageview_event,
        since_us=low,
        until_us=high,
    )
    starts = params.bind([start for start, _ in ranges], "Array(Int64)")
    stops = params.bind([stop for _, stop in ranges], "Array(Int64)")
    inside = f"arrayFilter(i -> start_us >= {starts}[i] AND start_us < {stops}[i], "
    found = rows(
        "SELECT range_no, n, total, bounces, views, if(n = 0, 0, sorted[intDiv(n + 1, 2)] + "
        "if(n % 2 = 0, sorted[intDiv(n + 2, 2)], 0)), if(n % 2 = 0, 2, 1) FROM ("
        "SELECT range_no, count() AS n, sum(duration) AS total, countIf(events = 1) AS bounces, "
        "sum(pageviews) AS views, arraySort(groupArray(duration)) AS sorted FROM ("
        "SELECT end_us - start_us AS duration, events, pageviews, "
        f"arrayJoin({inside}arrayEnumerate({starts}))) AS range_no FROM {table} "
        f"WHERE start_us >= {params.bind(low, 'Int64')} AND start_us < "
        f"{params.bind(high, 'Int64')}) GROUP BY range_no)",
        params,
    )
    counted: dict[int, Summary] = {}
    for number, n, total, bounces, views, middle, middle_n in found:
        counted[int(number)] = (
            int(n),
            int(total),
            int(bounces),
            int(views),
            int(middle),
            int(middle_n),
        )
    # A range without sessions: what the aggregate of no rows gives.
    empty: Summary = (0, 0, 0, 0, 0, 2)
    return [counted.get(number, empty) for number in range(1, len(ranges) + 1)]


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
