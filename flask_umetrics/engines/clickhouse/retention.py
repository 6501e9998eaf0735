"""Retention in ClickHouse SQL, with the semantics of ``queries/retention.py``: one row per
(person, period) with "started" / "returned" flags, the anchor (first start event's time) and
the start event's breakdown value; then per person its first start period (``minIf``), the
array of its start periods (with anchor and value), its return periods and return times; a cohort
row per member period ``P`` (the first start period for ``first_time``, every shown start period
for ``recurring``) counts a return in ``P + k`` (``bounded``) or in any period from ``P + k``
on (``unbounded``) — or, with rolling windows, a return time in the ``k``-th window from the
anchor (or any later). A person-property breakdown reads the person's current property as
trends does (``trends.grouped_source``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...events.validation import to_micros
from ...queries.sql import OTHER
from .expressions import (
    Params,
    bucket_index,
    chosen_event,
    other_group,
    person_events,
    prop_text,
    property_condition,
    top_groups_sql,
)
from .runner import rows
from .trends import grouped_source

if TYPE_CHECKING:
    from ...queries.buckets import Buckets
    from ...queries.context import ReportContext
    from ...queries.retention import Cells, Spec


def cells(
    ctx: ReportContext, spec: Spec, buckets: Buckets, shown: int
) -> tuple[list[str | None], Cells]:
    """``(top breakdown values, {(group, cohort index): (size, [returned k = 0..periods])})``
    of the non-empty shown cohorts."""
    params = Params()
    members = _members(ctx, spec, buckets, shown, params)
    top = _top(members, spec, params)
    group = (
        "CAST(NULL AS Nullable(String))"
        if spec.breakdown is None
        else other_group(top, params, OTHER)
    )
    came_back = [f"sum({_came_back(spec, k, params)}) AS k{k}" for k in range(spec.periods + 1)]
    query = (
        f"SELECT {group} AS g, cohort, count() AS size, {', '.join(came_back)} "
        f"FROM ({members}) GROUP BY g, cohort"
    )
    found: Cells = {}
    for row in rows(query, params):
        g, cohort, size, *counts = row
        found[(g, int(cohort))] = (int(size), [int(n) for n in counts])
    return top, found


def _top(members: str, spec: Spec, params: Params) -> list[str | None]:
    """The top ``breakdown_limit`` values by cohort members (ties by code point)."""
    if spec.breakdown is None:
        return []
    query = top_groups_sql(f"({members})", spec.breakdown_limit, params)
    return [row[0] for row in rows(query, params)]


def persons_sql(
    ctx: ReportContext,
    spec: Spec,
    buckets: Buckets,
    shown: int,
    cohort: int,
    k: int,
    breakdown_value: str | None,
) -> tuple[str, Params]:
    """``person_id, at`` (NULL) of the persons of cell ``(cohort, k)`` (of one breakdown
    value's grid with a breakdown)."""
    params = Params()
    members = _members(ctx, spec, buckets, shown, params)
    conditions = [f"cohort = {params.bind(cohort, 'Int64')}", _came_back(spec, k, params)]
    if spec.breakdown is not None:
        if breakdown_value == OTHER:
            top = _top(members, spec, Params(dict(params.values)))
            conditions.append(f"{other_group(top, params, OTHER)} = {params.bind(OTHER, 'String')}")
        elif breakdown_value is None:
            conditions.append("grp IS NULL")
        else:
            conditions.append(f"ifNull(grp = {params.bind(breakdown_value, 'String')}, 0)")
    sql = (
        f"SELECT person_id, CAST(NULL AS Nullable(Int64)) AS at FROM ({members}) "
        f"WHERE {' AND '.join(conditions)}"
    )
    return sql, params


def _came_back(spec: Spec, k: int, params: Params) -> str:
    if spec.rolling:
        width = params.bind(spec.window_us, "Int64")
        low = f"anchor + {params.bind(k, 'Int64')} * {width}"
        if spec.bounded:
            return f"arrayExists(r -> r >= {low} AND r < {low} + {width}, return_times)"
        return f"arrayExists(r -> r >= {low}, return_times)"
    ahead = f"cohort + {params.bind(k, 'Int64')}"
    if spec.bounded:
        return f"has(return_periods, {ahead})"
    return f"arrayExists(r -> r >= {ahead}, return_periods)"


def _members(ctx: ReportContext, spec: Spec, buckets: Buckets, shown: int, params: Params) -> str:
    """One row per (person, cohort they belong to): ``person_id``, ``cohort``, ``anchor``,
    ``grp`` (the breakdown value), the person's ``return_periods`` and ``return_times``."""
    cohort_start = params.bind(buckets.start_us, "Int64")
    cohort_end_us = to_micros(buckets.starts[shown])
    cohort_end = params.bind(cohort_end_us, "Int64")
    start_rules = "".join(
        f" AND {property_condition(f, 'properties', params)}" for f in spec.start_filters
    )
    return_rules = "".join(
        f" AND {property_condition(f, 'properties', params)}" for f in spec.return_filters
    )
    starts = f"({chosen_event(spec.start_event, params)}{start_rules} AND us < {cohort_end}"
    starts += f" AND us >= {cohort_start})" if spec.mode == "recurring" else ")"
    returns = f"({chosen_event(spec.return_event, params)}{return_rules} AND us >= {cohort_start}"
    if spec.bounded:
        end = (
            cohort_end_us + (spec.periods + 1) * spec.window_us if spec.rolling else buckets.end_us
        )
        returns += f" AND us < {params.bind(end, 'Int64')})"
    else:
        returns += ")"
    source = person_events(ctx, params, bounds=(None, None), where=[f"({starts} OR {returns})"])
    if spec.event_value:
        assert spec.breakdown is not None
        v = prop_text("properties", spec.breakdown, params)
        # The value on the first start event; at equal times the smallest (NULL last).
        value = f"argMinIf(tuple({v}), tuple(us, isNull({v}), ifNull({v}, '')), {starts}).1"
    else:
        value = "CAST(NULL AS Nullable(String))"
    times = f"groupArrayIf(us, {returns})" if spec.rolling else "CAST([] AS Array(Int64))"
    activity = (
        f"SELECT person_id, {bucket_index(buckets, 'us', params)} AS period, "
        f"max({starts}) AS started, max({returns}) AS returned, "
        f"minIf(us, {starts}) AS first_start, {value} AS start_value, {times} AS times "
        f"FROM {source} GROUP BY person_id, period"
    )
    shown_p = params.bind(shown, "Int64")
    keep = f"x.1 >= 0 AND x.1 < {shown_p}"
    if spec.mode == "first_time":
        keep += " AND x.1 = first_period"
    members = (
        "SELECT person_id, member.1 AS cohort, member.2 AS anchor, member.3 AS start_grp, "
        "return_periods, return_times FROM ("
        "SELECT person_id, minIf(period, started = 1) AS first_period, "
        "groupArrayIf(tuple(period, first_start, start_value), started = 1) AS start_info, "
        "groupArrayIf(period, returned = 1) AS return_periods, "
        "arrayFlatten(groupArray(times)) AS return_times "
        f"FROM ({activity}) GROUP BY person_id) "
        f"ARRAY JOIN arrayFilter(x -> {keep}, start_info) AS member"
    )
    source, grp = f"({members})", "start_grp"
    if spec.breakdown is not None and spec.breakdown_type == "person":  # as trends reads it
        source, grp = grouped_source(ctx, params, source, spec.breakdown, "person", None)
    return (
        f"SELECT person_id, cohort, anchor, {grp} AS grp, return_periods, return_times "
        f"FROM {source}"
    )


__all__: list[Any] = ["cells", "persons_sql"]
