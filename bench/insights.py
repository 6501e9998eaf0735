"""Benchmark questions of the deeper insights: a funnel with an exclusion step, a lifecycle, and
trends with ``compare=previous``. Each is answered by the report and by DuckDB SQL written from
the definition in docs/ (funnels-retention.md, trends-lifecycle-stickiness.md), on the rows the
other questions use (``bench/analytics.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask_umetrics.queries.funnel import FunnelExclusion
from flask_umetrics.queries.lifecycle import lifecycle
from flask_umetrics.queries.trends import trends

from .analytics import DAY_US, PAGEVIEW, Question, Ranges, _context, duck_funnel, our_funnel

if TYPE_CHECKING:
    import duckdb

#: Between ``activated`` and ``purchased`` (0-based steps 1 and 2): viewing the pricing page.
EXCLUDED = ("viewed_pricing", 1, 2)
STATUSES = ("new", "returning", "resurrecting", "dormant")


def our_lifecycle(ranges: Ranges) -> Any:
    ctx = _context(ranges.start_us, ranges.end_us)
    return [[getattr(p, s) for s in STATUSES] for p in lifecycle(ctx, interval="day").periods]


def duck_lifecycle(con: duckdb.DuckDBPyConnection, ranges: Ranges) -> Any:
    """Per day ``d`` of the range: active = an active event in ``d``; new = active and the
    person's first event of any kind is in ``d``; returning / resurrecting = active, not new,
    active / not active in ``d - 1``; dormant = active in ``d - 1``, not in ``d``."""
    f, t = ranges.start_us, ranges.end_us
    days = ranges.days
    rows = con.execute(
        f"""
        WITH pe AS (
            SELECT p.person_id, e.ts, e.active FROM events e
            JOIN pdi p ON p.distinct_id = e.distinct_id WHERE e.ts < {t}
        ),
        firsts AS (SELECT person_id, min(ts) AS first_ts FROM pe GROUP BY person_id),
        act AS (
            SELECT DISTINCT person_id, (ts - {f} + {DAY_US}) // {DAY_US} - 1 AS d
            FROM pe WHERE active AND ts >= {f} - {DAY_US}
        ),
        now AS (
            SELECT a.person_id, a.d,
                f.first_ts >= {f} + a.d * {DAY_US} AND f.first_ts < {f} + (a.d + 1) * {DAY_US}
                    AS is_new,
                EXISTS (SELECT 1 FROM act b WHERE b.person_id = a.person_id AND b.d = a.d - 1)
                    AS before
            FROM act a JOIN firsts f USING (person_id) WHERE a.d >= 0
        ),
        gone AS (
            SELECT a.d + 1 AS d, count(*) AS n FROM act a WHERE a.d < {days - 1}
                AND NOT EXISTS (
                    SELECT 1 FROM act b WHERE b.person_id = a.person_id AND b.d = a.d + 1)
            GROUP BY a.d
        ),
        shown AS (
            SELECT d, count(*) FILTER (WHERE is_new) AS new,
                count(*) FILTER (WHERE NOT is_new AND before) AS returning,
                count(*) FILTER (WHERE NOT is_new AND NOT before) AS resurrecting
            FROM now GROUP BY d
        )
        SELECT r.range, coalesce(s.new, 0), coalesce(s.returning, 0),
            coalesce(s.resurrecting, 0), coalesce(g.n, 0)
        FROM range({days}) r LEFT JOIN shown s ON s.d = r.range LEFT JOIN gone g ON g.d = r.range
        ORDER BY r.range
        """
    ).fetchall()
    return [list(row[1:]) for row in rows]


def _half(ranges: Ranges) -> tuple[int, int, int]:
    """The second half of the data's days (the range) and its first half (the previous range)."""
    half = ranges.days // 2
    return ranges.end_us - 2 * half * DAY_US, ranges.end_us - half * DAY_US, ranges.end_us


def our_compare(ranges: Ranges) -> Any:
    _, middle, end = _half(ranges)
    result = trends(
        _context(middle, end), event=PAGEVIEW, math="unique_persons", compare="previous"
    )
    assert result.previous is not None
    return {
        "current": [p.value for p in result.results[0].series],
        "previous": [p.value for p in result.previous.results[0].series],
    }


def duck_compare(con: duckdb.DuckDBPyConnection, ranges: Ranges) -> Any:
    """Persons with a page view per day of the range, and per day of the range of as many days
    just before it, aligned by day index."""
    start, middle, end = _half(ranges)
    half = (end - middle) // DAY_US
    rows = con.execute(
        f"""
        SELECT (e.ts - {start}) // {DAY_US} AS day, count(DISTINCT p.person_id)
        FROM events e JOIN pdi p ON p.distinct_id = e.distinct_id
        WHERE e.event = '{PAGEVIEW}' AND e.ts >= {start} AND e.ts < {end} GROUP BY day
        """
    ).fetchall()
    counts = dict(rows)
    return {
        "current": [float(counts.get(half + d, 0)) for d in range(half)],
        "previous": [float(counts.get(d, 0)) for d in range(half)],
    }


def questions(con: duckdb.DuckDBPyConnection, ranges: Ranges) -> list[Question]:
    name, a, b = EXCLUDED
    return [
        Question(
            f"funnel excluding {name} between steps {a} and {b}",
            lambda: our_funnel(ranges, [FunnelExclusion(name, (), a, b)]),
            lambda: duck_funnel(con, ranges, EXCLUDED),
        ),
        Question(
            f"lifecycle per day ({ranges.days} days)",
            lambda: our_lifecycle(ranges),
            lambda: duck_lifecycle(con, ranges),
        ),
        Question(
            f"trends unique persons, compare=previous (2 x {ranges.days // 2} days)",
            lambda: our_compare(ranges),
            lambda: duck_compare(con, ranges),
        ),
    ]
