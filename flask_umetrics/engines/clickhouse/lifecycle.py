"""Lifecycle in ClickHouse SQL, with the semantics of ``queries/lifecycle.py``: one row per
(person, period) of the person's events up to the end of the range, "active" flagged; then per
person its first period and the array of its active periods, unrolled into one row per active
period that looks at the periods next to it."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .expressions import (
    Params,
    bucket_index,
    chosen_event,
    person_events,
    property_condition,
)
from .runner import rows

if TYPE_CHECKING:
    from ...queries.buckets import Buckets
    from ...queries.context import ReportContext


def _per_person(ctx: ReportContext, buckets: Buckets, event: str | None, params: Params) -> str:
    """Per person: ``first_period`` (of any event) and ``active_periods`` (with the event)."""
    chosen = chosen_event(event, params)
    start = params.bind(buckets.start_us, "Int64")
    doing = " AND ".join(
        [
            chosen,
            f"us >= {start}",
            *(property_condition(f, "properties", params) for f in ctx.filters),
        ]
    )
    # The first event of any kind counts whatever the report filters: read without them.
    everything = dataclasses.replace(ctx, filters=())
    source = person_events(everything, params, bounds=(None, buckets.end_us))
    activity = (
        f"SELECT person_id, {bucket_index(buckets, 'us', params)} AS period, "
        f"max({doing}) AS act FROM {source} GROUP BY person_id, period"
    )
    return (
        "SELECT person_id, min(period) AS first_period, "
        "groupArrayIf(period, act = 1) AS active_periods "
        f"FROM ({activity}) GROUP BY person_id"
    )


def cells(
    ctx: ReportContext, buckets: Buckets, event: str | None
) -> dict[int, tuple[int, int, int, int]]:
    """``{period index: (new, returning, resurrecting, active but not in the next)}``."""
    params = Params()
    per_person = _per_person(ctx, buckets, event, params)
    last = params.bind(len(buckets.starts) - 1, "Int64")
    query = (
        "SELECT p, countIf(p >= 1 AND p = first_period), "
        "countIf(p >= 1 AND p != first_period AND has(active_periods, p - 1)), "
        "countIf(p >= 1 AND p != first_period AND NOT has(active_periods, p - 1)), "
        f"countIf(p < {last} AND NOT has(active_periods, p + 1)) "
        f"FROM ({per_person}) ARRAY JOIN active_periods AS p GROUP BY p"
    )
    return {
        int(p): (int(new), int(back), int(again), int(gone))
        for p, new, back, again, gone in rows(query, params)
    }


def persons_sql(
    ctx: ReportContext, buckets: Buckets, event: str | None, index: int, status: str, start: int
) -> tuple[str, Params]:
    """``person_id, at`` of the persons behind bar ``status`` of period ``index``
    (``queries/lifecycle.py:lifecycle_persons``), ``at`` the period's start."""
    params = Params()
    per_person = _per_person(ctx, buckets, event, params)
    now = f"has(active_periods, toInt64({params.bind(index, 'Int64')}))"
    before = f"has(active_periods, toInt64({params.bind(index - 1, 'Int64')}))"
    first = f"first_period = {params.bind(index, 'Int64')}"
    picked = {
        "new": f"{now} AND {first}",
        "returning": f"{now} AND NOT {first} AND {before}",
        "resurrecting": f"{now} AND NOT {first} AND NOT {before}",
        "dormant": f"{before} AND NOT {now}",
    }[status]
    at = params.bind(start, "Int64")
    return f"SELECT person_id, {at} AS at FROM ({per_person}) WHERE {picked}", params
