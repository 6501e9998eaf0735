"""Paths in ClickHouse SQL, with the semantics of ``queries/paths.py``: each person's events in
the range ordered by ``(ts, seq)`` (SQL: ``(ts, id)``) as one array, consecutive repeats
collapsed, cut at the first ``start_event`` (or the first event); transitions counted per step,
the top ``limit`` per step by persons, ties by names (byte order = code point order)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .expressions import Params, person_events
from .runner import rows

if TYPE_CHECKING:
    from ...queries.context import ReportContext


def transitions(
    ctx: ReportContext, start_event: str | None, steps: int, limit: int
) -> list[tuple[Any, ...]]:
    """``(step, from, to, persons)`` rows, by step then rank."""
    params = Params()
    source = person_events(ctx, params)
    start = "1" if start_event is None else f"indexOf(path, {params.bind(start_event, 'String')})"
    per_person = (
        "SELECT arrayFilter((e, i) -> i = 1 OR e != ordered[i - 1], ordered, "
        "arrayEnumerate(ordered)) AS path FROM ("
        "SELECT arrayMap(x -> x.3, arraySort(x -> (x.1, x.2), groupArray((us, seq, event)))) "
        f"AS ordered FROM {source} GROUP BY person_id)"
    )
    steps_p = params.bind(steps, "UInt32")
    counted = (
        "SELECT step, path[begin + step - 1] AS src, path[begin + step] AS dst, count() AS n "
        f"FROM (SELECT path, {start} AS begin FROM ({per_person})) "
        f"ARRAY JOIN range(1, {steps_p} + 1) AS step "
        "WHERE begin > 0 AND begin + step <= length(path) GROUP BY step, src, dst"
    )
    return rows(
        "SELECT step, src, dst, n FROM (SELECT step, src, dst, n, row_number() OVER "
        f"(PARTITION BY step ORDER BY n DESC, src ASC, dst ASC) AS place FROM ({counted})) "
        f"WHERE place <= {params.bind(limit, 'UInt32')} ORDER BY step, place",
        params,
    )
