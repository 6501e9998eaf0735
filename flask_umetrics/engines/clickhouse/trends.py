"""Trends (and volume) in ClickHouse SQL: the rows ``queries/trends.py`` shapes.

Same two steps as the SQL path: the top ``limit`` breakdown values by count (ties by code
point, the missing value last), then one cell per (group, bucket). ``unique_persons`` is
``uniqExact`` (``uniq`` is approximate); an empty ``avg``/``min``/``max`` is NULL (shaped to 0)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...queries.percentiles import PERCENTILES, clickhouse_percentile
from .expressions import (
    NO_PROJECTIONS,
    Params,
    bucket_index,
    live_persons,
    other_group,
    person_events,
    prop_number,
    prop_text,
    scope_param,
    scoped_events,
    segment_condition,
    top_groups_sql,
)
from .runner import rows

if TYPE_CHECKING:
    from ...queries.buckets import Buckets
    from ...queries.context import ReportContext
    from ...queries.segments import Segment

_AGGREGATES = {
    "total": "count()",
    "unique_persons": "uniqExact(person_id)",
    "dau": "uniqExact(person_id)",
    "unique_sessions": "uniqExact(session)",
    "per_person_avg": "count() / uniqExact(person_id)",
    "first_time": "count()",  # one row per person: their first event
    "sum": "sum(number)",
    "avg": "avg(number)",
    "min": "min(number)",
    "max": "max(number)",
}


def cells(
    ctx: ReportContext,
    buckets: Buckets,
    *,
    event: str | None,
    math: str,
    property: str | None,
    breakdown: str | None,
    breakdown_limit: int,
    other: str,
    window: int | None = None,
    breakdown_type: str = "event",
    segment: Segment | None = None,
) -> tuple[list[str | None], dict[tuple[Any, int], Any]]:
    """``(top breakdown values, {(group, bucket index): value})``."""
    params = Params()
    base = _rows(
        ctx, buckets, params, event, math, property, window, breakdown, breakdown_type, segment
    )
    top = _top(base, params, breakdown, breakdown_limit, segment)
    grouped = "CAST(NULL AS Nullable(String))"
    if breakdown is not None:
        grouped = other_group(top, params, other)
    if window is not None:  # each (group, day, person) counts for the window's days
        last = params.bind(len(buckets.starts), "Int64")
        result = rows(
            f"SELECT cell_group, spread_bucket, uniqExact(person_id) FROM (SELECT {grouped} "
            f"AS cell_group, bucket + arrayJoin(range({params.bind(window, 'UInt8')})) AS "
            f"spread_bucket, person_id FROM {base}) WHERE spread_bucket < {last} "
            "GROUP BY cell_group, spread_bucket",
            params,
        )
        return top, {(g, int(bucket)): value for g, bucket, value in result}
    if math in PERCENTILES:
        aggregate = clickhouse_percentile("number", PERCENTILES[math])
    else:
        aggregate = _AGGREGATES[math]
    # Without a breakdown the group is one constant NULL: grouping by it too would hash a
    # Nullable(String) per event (measured: 40 % of the volume query's time).
    keys = "cell_group, bucket" if breakdown is not None else "bucket"
    result = rows(
        f"SELECT {grouped} AS cell_group, bucket, {aggregate} AS cell_value "
        f"FROM {base} GROUP BY {keys}",
        params,
        None if event is not None else NO_PROJECTIONS,
    )
    return top, {(group_value, int(bucket)): value for group_value, bucket, value in result}


def _rows(
    ctx: ReportContext,
    buckets: Buckets,
    params: Params,
    event: str | None,
    math: str,
    property: str | None,
    window: int | None,
    breakdown: str | None,
    breakdown_type: str,
    segment: Segment | None,
) -> str:
    """The rows a report aggregates (``queries/trends.py:_sql_rows``): ``bucket``, ``grp``,
    ``number``, ``person_id`` (0 when it reads no persons) and ``session``."""
    needs_persons = (
        math in {"unique_persons", "per_person_avg", "first_time", "dau", "wau", "mau"}
        or ctx.sample is not None
        or ctx.segment is not None
        or (breakdown is not None and breakdown_type != "event")
    )
    where = [] if event is None else [f"event = {params.bind(event, 'String')}"]
    if math == "first_time":  # each person's first event (by time, then arrival) in the range
        earlier = person_events(ctx, params, bounds=(None, ctx.to_us), where=where)
        since = params.bind(ctx.from_us, "Int64")
        source = (
            f"(SELECT * FROM (SELECT * FROM {earlier} ORDER BY us, seq LIMIT 1 BY person_id) "
            f"WHERE us >= {since})"
        )
    else:  # wau/mau: from the first day read (buckets start before the range)
        bounds = (ctx.from_us if window is None else buckets.start_us, ctx.to_us)
        source = (person_events if needs_persons else scoped_events)(
            ctx, params, bounds=bounds, where=where
        )
    group = "CAST(NULL AS Nullable(String))"
    if breakdown is not None:
        source, group = grouped_source(ctx, params, source, breakdown, breakdown_type, segment)
    number = prop_number("properties", property, params) if property else "NULL"
    person = "person_id" if needs_persons else "0"
    return (
        f"(SELECT {bucket_index(buckets, 'us', params)} AS bucket, {group} AS grp, "
        f"{number} AS number, {person} AS person_id, session_id AS session "
        f"FROM {source})"
    )


def _top(
    base: str, params: Params, breakdown: str | None, limit: int, segment: Segment | None
) -> list[str | None]:
    """The groups of ``base`` shown on their own (``queries/trends.py:_sql_top``)."""
    if segment is not None:
        return ["in", "out"]
    if breakdown is None:
        return [None]
    return [row[0] for row in rows(top_groups_sql(base, limit, params), params)]


def breakdown_top(
    ctx: ReportContext,
    buckets: Buckets,
    *,
    event: str | None,
    breakdown: str,
    breakdown_limit: int,
    breakdown_type: str = "event",
    segment: Segment | None = None,
) -> list[str | None]:
    """The top values of the ``total`` report of these options, without its cells."""
    params = Params()
    base = _rows(
        ctx, buckets, params, event, "total", None, None, breakdown, breakdown_type, segment
    )
    return _top(base, params, breakdown, breakdown_limit, segment)


def persons_sql(
    ctx: ReportContext,
    span: tuple[int, int],
    event: str | None,
    breakdown: str | None,
    breakdown_value: str | None,
    top: list[str | None] | None,
    *,
    breakdown_type: str = "event",
    segment: Segment | None = None,
) -> tuple[str, Params]:
    """``person_id, at`` of the persons behind one point (``queries/trends.py:trend_persons``):
    events in ``span`` (µs) of the series' group, first event time per person."""
    params = Params()
    where = [] if event is None else [f"event = {params.bind(event, 'String')}"]
    source = person_events(ctx, params, bounds=span, where=where)
    if breakdown is not None:
        source, value = grouped_source(ctx, params, source, breakdown, breakdown_type, segment)
        keep: list[str] = []
        if top is not None:
            named = params.bind([v for v in top if v is not None], "Array(String)")
            keep.append(f"({value} IS NULL OR NOT has({named}, assumeNotNull({value})))")
            if None in top:
                keep.append(f"{value} IS NOT NULL")
        elif breakdown_value is None:
            keep.append(f"{value} IS NULL")
        else:
            keep.append(f"{value} = {params.bind(breakdown_value, 'String')}")
        source = f"(SELECT * FROM {source} WHERE {' AND '.join(keep)})"
    return f"SELECT person_id, min(us) AS at FROM {source} GROUP BY person_id", params


def grouped_source(
    ctx: ReportContext,
    params: Params,
    source: str,
    breakdown: str,
    breakdown_type: str,
    segment: Segment | None,
) -> tuple[str, str]:
    """``source`` (events with ``person_id`` for person and segment breakdowns) and the
    breakdown value of its rows: an event property, the person's current property (the
    newest version in the persons mirror; no person -> NULL; retention's person breakdown
    reads it here too), or ``in`` / ``out`` of ``segment``."""
    if breakdown_type == "person":
        people = live_persons(scope_param(ctx, params))
        joined = (
            f"(SELECT s.*, pp.person_properties AS person_properties FROM {source} AS s "
            f"LEFT JOIN {people} AS pp ON pp.person_key = s.person_id)"
        )
        return joined, prop_text("ifNull(person_properties, '{}')", breakdown, params)
    if segment is not None:
        member = segment_condition(segment, "person_id", params)
        return source, f"toNullable(if({member}, 'in', 'out'))"
    return source, prop_text("properties", breakdown, params)
