"""The web overview in ClickHouse SQL, with the semantics of ``queries/web.py``: page views by
property, and sessions (``sessions.py``'s table) by their first / last page view in
``(ts, seq)`` order, as SQL orders by ``(ts, id)``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...queries import web as rules
from ...queries.sessions import session_timeout_us
from .attribution import channel_of, touch_fields, with_hosts
from .expressions import Params, bucket_index, person_events, prop_text
from .runner import rows
from .sessions import session_table

if TYPE_CHECKING:
    from ...queries.buckets import Buckets
    from ...queries.context import ReportContext

_ORDER = "ORDER BY visitors DESC, views DESC, row_key ASC"


def _pageviews(ctx: ReportContext, params: Params) -> str:
    return person_events(
        ctx, params, where=["active", f"event = {params.bind(rules.PAGEVIEW, 'String')}"]
    )


def totals(ctx: ReportContext) -> tuple[int, int]:
    params = Params()
    found = rows(f"SELECT uniqExact(person_id), count() FROM {_pageviews(ctx, params)}", params)
    return int(found[0][0]), int(found[0][1])


def series(ctx: ReportContext, buckets: Buckets) -> dict[int, tuple[int, int]]:
    params = Params()
    source = _pageviews(ctx, params)
    query = (
        f"SELECT {bucket_index(buckets, 'us', params)} AS bucket, uniqExact(person_id), count() "
        f"FROM {source} GROUP BY bucket"
    )
    return {int(i): (int(v), int(p)) for i, v, p in rows(query, params)}


def breakdowns(ctx: ReportContext, limit: int, hosts: tuple[str, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, key_name in rules.PAGEVIEW_BREAKDOWNS.items():
        params = Params()
        source = _pageviews(ctx, params)
        key = prop_text("properties", key_name, params)
        query = (
            "SELECT row_key, visitors, views FROM (SELECT assumeNotNull(k) AS row_key, "
            "uniqExact(person_id) AS visitors, count() AS views FROM "
            f"(SELECT {key} AS k, person_id FROM {source}) WHERE k IS NOT NULL GROUP BY row_key) "
            f"{_ORDER} LIMIT {params.bind(limit, 'UInt32')}"
        )
        found[name] = rows(query, params)
    for name, column in rules.SESSION_BREAKDOWNS.items():
        params = Params()
        visits = _visits(ctx, params, hosts)
        edge = "is_first" if name != "exit_pages" else "is_last"
        query = (
            "SELECT row_key, visitors, views FROM (SELECT assumeNotNull(k) AS row_key, "
            "uniqExact(person_id) AS visitors, sum(session_views) AS views FROM "
            f"(SELECT {column} AS k, person_id, session_views FROM ({visits}) "
            f"WHERE {edge} = 1) WHERE k IS NOT NULL GROUP BY row_key) "
            f"{_ORDER} LIMIT {params.bind(limit, 'UInt32')}"
        )
        found[name] = rows(query, params)
    return found


def _visits(ctx: ReportContext, params: Params, hosts: tuple[str, ...]) -> str:
    """``queries/web.py:_visits``: page views of the sessions starting in the range."""
    table = session_table(
        ctx,
        params,
        timeout_us=session_timeout_us(),
        pageview_event=rules.PAGEVIEW,
        since_us=ctx.from_us,
        until_us=ctx.to_us,
    )
    start = params.bind(ctx.from_us, "Int64")
    stop = params.bind(ctx.to_us, "Int64")
    chosen = (
        "SELECT person_id AS s_person, session_key, start_us, end_us, pageviews AS session_views "
        f"FROM {table} WHERE start_us >= {start} AND start_us < {stop} AND pageviews > 0"
    )
    views = person_events(
        ctx,
        params,
        bounds=(None, None),
        where=["active", f"event = {params.bind(rules.PAGEVIEW, 'String')}"],
    )
    session = "PARTITION BY s_person, session_key, start_us"
    joined = (
        "SELECT s_person AS person_id, session_views, "
        f"row_number() OVER ({session} ORDER BY v.us ASC, v.seq ASC) AS is_first, "
        f"row_number() OVER ({session} ORDER BY v.us DESC, v.seq DESC) AS is_last, "
        f"{prop_text('v.properties', '$pathname', params)} AS page, "
        f"{touch_fields(params, 'v.properties')} "
        f"FROM ({chosen}) AS s INNER JOIN {views} AS v ON v.person_id = s.s_person "
        "WHERE v.us >= s.start_us AND v.us <= s.end_us AND "
        "((v.session_id IS NULL AND s.session_key IS NULL) OR v.session_id = s.session_key)"
    )
    staged = with_hosts(joined, hosts, params)
    return f"SELECT *, {channel_of(params)} AS channel FROM ({staged})"
