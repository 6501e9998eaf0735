"""Retention in ClickHouse SQL, with the semantics of ``queries/retention.py``: one row per
(person, period) with "started" / "returned" flags, then per person the arrays of its start and
return periods; a cohort row per member period ``P`` (the first start period for
``first_time``, every shown start period for ``recurring``) counts a return in ``P + k``
(``bounded``) or in any period from ``P + k`` on (``unbounded``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...events.validation import to_micros
from .expressions import Params, bucket_index, person_events
from .runner import rows

if TYPE_CHECKING:
    from ...queries.buckets import Buckets
    from ...queries.context import ReportContext


def _chosen(event: str | None, params: Params) -> str:
    return "active" if event is None else f"event = {params.bind(event, 'String')}"


def cells(
    ctx: ReportContext,
    buckets: Buckets,
    shown: int,
    start_event: str | None,
    return_event: str | None,
    periods: int,
    mode: str,
    bounded: bool,
) -> dict[int, tuple[int, list[int]]]:
    """``{cohort index: (size, [returned k = 0..periods])}`` of the non-empty shown cohorts."""
    params = Params()
    members = _members(ctx, buckets, shown, start_event, return_event, mode, bounded, params)
    came_back = [f"sum({_came_back(k, bounded, params)}) AS k{k}" for k in range(periods + 1)]
    query = (
        f"SELECT cohort, count() AS size, {', '.join(came_back)} FROM ({members}) GROUP BY cohort"
    )
    found: dict[int, tuple[int, list[int]]] = {}
    for row in rows(query, params):
        cohort, size, *counts = row
        found[int(cohort)] = (int(size), [int(n) for n in counts])
    return found


def persons_sql(
    ctx: ReportContext,
    buckets: Buckets,
    shown: int,
    start_event: str | None,
    return_event: str | None,
    periods: int,
    mode: str,
    bounded: bool,
    cohort: int,
    k: int,
) -> tuple[str, Params]:
    """``person_id, at`` (NULL) of the persons of cell ``(cohort, k)``."""
    params = Params()
    members = _members(ctx, buckets, shown, start_event, return_event, mode, bounded, params)
    sql = (
        f"SELECT person_id, CAST(NULL AS Nullable(Int64)) AS at FROM ({members}) "
        f"WHERE cohort = {params.bind(cohort, 'Int64')} AND {_came_back(k, bounded, params)}"
    )
    return sql, params


def _came_back(k: int, bounded: bool, params: Params) -> str:
    ahead = f"cohort + {params.bind(k, 'Int64')}"
    if bounded:
        return f"has(return_periods, {ahead})"
    return f"arrayExists(r -> r >= {ahead}, return_periods)"


def _members(
    ctx: ReportContext,
    buckets: Buckets,
    shown: int,
    start_event: str | None,
    return_event: str | None,
    mode: str,
    bounded: bool,
    params: Params,
) -> str:
    """One row per (person, cohort they belong to): ``person_id``, ``cohort`` and the person's
    ``return_periods``."""
    cohort_start = params.bind(buckets.start_us, "Int64")
    cohort_end = params.bind(to_micros(buckets.starts[shown]), "Int64")
    starts = f"({_chosen(start_event, params)} AND us < {cohort_end}"
    starts += f" AND us >= {cohort_start})" if mode == "recurring" else ")"
    returns = f"({_chosen(return_event, params)} AND us >= {cohort_start}"
    returns += f" AND us < {params.bind(buckets.end_us, 'Int64')})" if bounded else ")"
    source = person_events(ctx, params, bounds=(None, None), where=[f"({starts} OR {returns})"])
    activity = (
        f"SELECT person_id, {bucket_index(buckets, 'us', params)} AS period, "
        f"max({starts}) AS started, max({returns}) AS returned FROM {source} "
        "GROUP BY person_id, period"
    )
    shown_p = params.bind(shown, "Int64")
    if mode == "first_time":
        members = (
            "if(empty(start_periods) OR arrayMin(start_periods) < 0 OR "
            f"arrayMin(start_periods) >= {shown_p}, [], [arrayMin(start_periods)])"
        )
    else:
        members = f"arrayFilter(p -> p >= 0 AND p < {shown_p}, start_periods)"
    return (
        "SELECT person_id, cohort, return_periods FROM ("
        "SELECT person_id, groupArrayIf(period, started = 1) AS start_periods, "
        "groupArrayIf(period, returned = 1) AS return_periods "
        f"FROM ({activity}) GROUP BY person_id) "
        f"ARRAY JOIN {members} AS cohort"
    )


__all__: list[Any] = ["cells", "persons_sql"]
