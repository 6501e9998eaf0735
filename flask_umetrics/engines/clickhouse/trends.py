"""Trends (and volume) in ClickHouse SQL: the rows ``queries/trends.py`` shapes.

Same two steps as the SQL path: the top ``limit`` breakdown values by count (ties by code
point, the missing value last), then one cell per (group, bucket). ``unique_persons`` is
``uniqExact`` (``uniq`` is approximate); an empty ``avg``/``min``/``max`` is NULL (shaped to 0)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .expressions import Params, bucket_index, person_events, prop_number, prop_text, scoped_events
from .runner import rows

if TYPE_CHECKING:
    from ...queries.buckets import Buckets
    from ...queries.context import ReportContext

_AGGREGATES = {
    "total": "count()",
    "unique_persons": "uniqExact(person_id)",
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
) -> tuple[list[str | None], dict[tuple[Any, int], Any]]:
    """``(top breakdown values, {(group, bucket index): value})``."""
    params = Params()
    needs_persons = math == "unique_persons" or ctx.sample is not None or ctx.segment is not None
    where = [] if event is None else [f"event = {params.bind(event, 'String')}"]
    source = (person_events if needs_persons else scoped_events)(ctx, params, where=where)
    group = "CAST(NULL AS Nullable(String))"
    if breakdown is not None:
        group = prop_text("properties", breakdown, params)
    number = prop_number("properties", property, params) if property else "NULL"
    person = "person_id" if needs_persons else "0"
    base = (
        f"(SELECT {bucket_index(buckets, 'us', params)} AS bucket, {group} AS grp, "
        f"{number} AS number, {person} AS person_id FROM {source})"
    )
    top: list[str | None] = [None]
    if breakdown is not None:
        found = rows(
            f"SELECT grp FROM {base} GROUP BY grp ORDER BY count() DESC, grp ASC NULLS LAST "
            f"LIMIT {params.bind(breakdown_limit, 'UInt32')}",
            params,
        )
        top = [row[0] for row in found]
    grouped = "CAST(NULL AS Nullable(String))"
    if breakdown is not None:
        named = params.bind([value for value in top if value is not None], "Array(String)")
        missing = "grp IS NULL, CAST(NULL AS Nullable(String)), " if None in top else ""
        grouped = (
            f"multiIf(grp IS NOT NULL AND has({named}, assumeNotNull(grp)), grp, {missing}"
            f"toNullable({params.bind(other, 'String')}))"
        )
    # Without a breakdown the group is one constant NULL: grouping by it too would hash a
    # Nullable(String) per event (measured: 40 % of the volume query's time).
    keys = "cell_group, bucket" if breakdown is not None else "bucket"
    result = rows(
        f"SELECT {grouped} AS cell_group, bucket, {_AGGREGATES[math]} AS cell_value "
        f"FROM {base} GROUP BY {keys}",
        params,
    )
    return top, {(group_value, int(bucket)): value for group_value, bucket, value in result}
