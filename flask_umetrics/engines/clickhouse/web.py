"""The web overview in ClickHouse SQL, with the semantics of ``queries/web.py``: page views by
property, and sessions (``sessions.py``'s table) by their first / last page view in
``(ts, seq)`` order, as SQL orders by ``(ts, id)``.

One statement answers every card but the session summaries: each page view of the two ranges
and each visit (a session's page views folded into one row: its first and last page view by
``argMin`` / ``argMax``) is read once and unrolled into one ``(card, key)`` pair per number it
counts in (totals, previous totals, its bucket, each breakdown); one ``GROUP BY`` counts all
the pairs and a window keeps each breakdown's top ``limit``. A page view finds its session by
an ``ASOF`` join (the latest session of its person and id started at or before it), not by
pairing every session of a person with every page view of that person and testing the range,
which ran out of memory on 300,000 events (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...queries import web as rules
from ...queries.sessions import session_timeout_us
from .attribution import channel_of, touch_fields, with_hosts
from .expressions import Params, bucket_index, person_events, prop_text
from .runner import rows
from .sessions import session_table

if TYPE_CHECKING:
    from ...queries.buckets import Buckets
    from ...queries.context import ReportContext

#: Cards that are not breakdowns; the breakdowns follow, in ``rules.BREAKDOWNS`` order.
_TOTALS, _PREVIOUS, _SERIES = 0, 1, 2
_FIRST_BREAKDOWN = 3
_ORDER = "ORDER BY visitors DESC, views DESC, row_key ASC"


def _card(name: str) -> int:
    return _FIRST_BREAKDOWN + rules.BREAKDOWNS.index(name)


def counts(
    ctx: ReportContext,
    before: ReportContext,
    buckets: Buckets,
    limit: int,
    hosts: tuple[str, ...],
) -> rules.Counts:
    """``queries/web.py:sql_counts`` in one statement: rows ``(card, key, visitors, views)``."""
    params = Params()
    pageviews = _pageview_pairs(ctx, before, buckets, params)
    pairs = f"{pageviews} UNION ALL {_visit_pairs(ctx, hosts, params)}"
    counted = (
        "SELECT card, row_key, uniqExact(person_id) AS visitors, sum(weight) AS views FROM ("
        "SELECT person_id, weight, pair.1 AS card, assumeNotNull(pair.2) AS row_key "
        f"FROM ({pairs}) ARRAY JOIN arrayFilter(t -> t.2 IS NOT NULL, pairs) AS pair) "
        "GROUP BY card, row_key"
    )
    query = (
        "SELECT card, row_key, visitors, views FROM (SELECT card, row_key, visitors, views, "
        f"row_number() OVER (PARTITION BY card {_ORDER}) AS place FROM ({counted})) "
        f"WHERE card < {_FIRST_BREAKDOWN} OR place <= {params.bind(limit, 'UInt32')} "
        "ORDER BY card, place"
    )
    totals = previous = (0, 0)
    series: dict[int, tuple[int, int]] = {}
    breakdowns: dict[str, rules.Raw] = {name: [] for name in rules.BREAKDOWNS}
    for card, key, visitors, views in rows(query, params):
        if card == _TOTALS:
            totals = (int(visitors), int(views))
        elif card == _PREVIOUS:
            previous = (int(visitors), int(views))
        elif card == _SERIES:
            series[int(key)] = (int(visitors), int(views))
        else:
            breakdowns[rules.BREAKDOWNS[card - _FIRST_BREAKDOWN]].append((key, visitors, views))
    return rules.Counts(totals, previous, series, breakdowns)


def _pageview_pairs(
    ctx: ReportContext, before: ReportContext, buckets: Buckets, params: Params
) -> str:
    """``person_id, weight, pairs`` of each page view of the range (totals, bucket, each
    property) and of the previous range (previous totals), read in one pass over both
    (``before`` is ``ctx`` over another range: the same filters, segment and sample)."""
    low, high = min(ctx.from_us, before.from_us), max(ctx.to_us, before.to_us)
    source = person_events(
        ctx,
        params,
        bounds=(low, high),
        where=["active", f"event = {params.bind(rules.PAGEVIEW, 'String')}"],
    )
    now, then = (_within(c, params) for c in (ctx, before))
    cards = [
        f"({_TOTALS}, '')",
        f"({_SERIES}, toString({bucket_index(buckets, 'us', params)}))",
        *(
            f"({_card(name)}, {prop_text('properties', key, params)})"
            for name, key in rules.PAGEVIEW_BREAKDOWNS.items()
        ),
    ]
    pairs = f"arrayConcat(if({now}, [{', '.join(cards)}], []), if({then}, [({_PREVIOUS}, '')], []))"
    return f"SELECT person_id, toUInt64(1) AS weight, {pairs} AS pairs FROM {source}"


def _within(ctx: ReportContext, params: Params) -> str:
    return f"us >= {params.bind(ctx.from_us, 'Int64')} AND us < {params.bind(ctx.to_us, 'Int64')}"


def _visit_pairs(ctx: ReportContext, hosts: tuple[str, ...], params: Params) -> str:
    """``person_id, weight, pairs`` of each session starting in the range with a page view
    (``queries/web.py:_visits``): its page views as ``weight``, a pair per session breakdown
    (``exit_pages`` from its last page view, the others from its first)."""
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
    # A session's page views are at or after its start: none before the range is needed.
    views = person_events(
        ctx,
        params,
        bounds=(ctx.from_us, None),
        where=["active", f"event = {params.bind(rules.PAGEVIEW, 'String')}"],
    )
    # Each page view meets the latest of its person's sessions of the same kind and id that
    # started at or before it (sessions of one kind and id never overlap); it is in that
    # session unless the session ended before it.
    same_session = (
        "v.person_id = s.s_person AND isNull(v.session_id) = isNull(s.session_key) AND "
        "ifNull(v.session_id, '') = ifNull(s.session_key, '') AND v.us >= s.start_us"
    )
    visits = (
        "SELECT s.s_person AS person_id, any(s.session_views) AS weight, "
        "argMin(v.properties, (v.us, v.seq)) AS entry_properties, "
        "argMax(v.properties, (v.us, v.seq)) AS exit_properties "
        f"FROM {views} AS v ASOF INNER JOIN ({chosen}) AS s ON {same_session} "
        "WHERE v.us <= s.end_us GROUP BY s.s_person, s.session_key, s.start_us"
    )
    raw = (
        "SELECT person_id, weight, "
        f"{prop_text('entry_properties', '$pathname', params)} AS page, "
        f"{prop_text('exit_properties', '$pathname', params)} AS exit_page, "
        f"{touch_fields(params, 'entry_properties')} FROM ({visits})"
    )
    staged = with_hosts(raw, hosts, params)
    cards = ", ".join(
        f"({_card(name)}, {'exit_page' if name == 'exit_pages' else column})"
        for name, column in rules.SESSION_BREAKDOWNS.items()
    )
    return (
        f"SELECT person_id, weight, [{cards}] AS pairs FROM "
        f"(SELECT *, {channel_of(params)} AS channel FROM ({staged}))"
    )
