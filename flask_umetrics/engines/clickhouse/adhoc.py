"""The safe ad-hoc query's plan (``queries/adhoc.py``, validated there) in ClickHouse SQL.

The same two levels as the SQL statement: an inner query picks the fields of each event (with
its person through the newest distinct-id map, and the person's properties from the persons
mirror when a ``person.properties.*`` field is read), the outer one groups, aggregates, orders
and limits over columns named ``f<i>`` / ``c<i>`` (never a column's name: an alias would shadow
it). Every value is a bound parameter. Aggregates keep the SQL answers: ``uniqExact`` for
``count(DISTINCT)``, and ``-OrNull`` sums, averages and extremes (NULL over no number, where
ClickHouse would answer 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .expressions import (
    Params,
    bucket_index,
    live_persons,
    person_events,
    prop_number,
    prop_text,
    property_condition,
    scope_param,
    text_condition,
)
from .runner import rows

if TYPE_CHECKING:
    from ...queries.adhoc import FieldRef, Plan, Where
    from ...queries.buckets import Buckets
    from ...queries.context import ReportContext

_COLUMNS = {
    "event": "e.event",
    "distinct_id": "e.distinct_id",
    "person_id": "e.person_id",
    "session_id": "e.session_id",
    "timestamp": "e.us",
}
_AGGREGATES = {
    "count_distinct": "uniqExact",
    "sum": "sumOrNull",
    "avg": "avgOrNull",
    "min": "minOrNull",
    "max": "maxOrNull",
}
_COMPARE = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
#: A person without a mirror row reads as no properties (SQL's LEFT JOIN miss).
_PERSON_PROPERTIES = "ifNull(pp.person_properties, '{}')"


class _Builder:
    def __init__(self, ctx: ReportContext, buckets: dict[str, Buckets], params: Params) -> None:
        self.ctx = ctx
        self.buckets = buckets
        self.params = params

    def properties(self, field: FieldRef) -> str:
        return _PERSON_PROPERTIES if field.kind == "person_property" else "e.properties"

    def value_of(self, field: FieldRef, numeric: bool = False) -> str:
        if field.kind in {"property", "person_property"}:
            read = prop_number if numeric else prop_text
            return read(self.properties(field), field.key or "", self.params)
        if field.kind in self.buckets:
            return bucket_index(self.buckets[field.kind], "e.us", self.params)
        return _COLUMNS[field.kind]

    def condition(self, cond: Where) -> str:
        if cond.filter is not None:
            return property_condition(cond.filter, self.properties(cond.field), self.params)
        kind = cond.field.kind
        if kind in {"event", "distinct_id", "session_id"}:
            many = cond.op in {"in", "not_in"}
            value = list(cond.values) if many else (cond.values[0] if cond.values else None)
            return text_condition(self.value_of(cond.field), cond.op, value, self.params)
        if kind in {"person_id", "timestamp"}:
            return self.ordered(_COLUMNS[kind], cond)
        return self.calendar(cond)

    def ordered(self, column: str, cond: Where) -> str:
        if cond.op == "is_set":
            return f"({column} IS NOT NULL)"
        if cond.op == "is_not_set":
            return f"({column} IS NULL)"
        if cond.op in {"in", "not_in"}:
            inside = f"has({self.params.bind(list(cond.values), 'Array(Int64)')}, {column})"
            return inside if cond.op == "in" else f"NOT {inside}"
        return f"({column} {_COMPARE[cond.op]} {self.params.bind(cond.values[0], 'Int64')})"

    def calendar(self, cond: Where) -> str:
        """Bucket comparisons as µs ranges on the event's time, as in SQL."""
        us = "e.us"
        if cond.op == "is_set":
            return f"({us} IS NOT NULL)"
        if cond.op == "is_not_set":
            return f"({us} IS NULL)"
        if cond.op in {"in", "not_in"}:
            lows = self.params.bind([lo for lo, _ in cond.values], "Array(Int64)")
            highs = self.params.bind([hi for _, hi in cond.values], "Array(Int64)")
            inside = f"arrayExists((lo, hi) -> {us} >= lo AND {us} < hi, {lows}, {highs})"
            return inside if cond.op == "in" else f"NOT {inside}"
        low, high = cond.values[0]
        lo, hi = self.params.bind(low, "Int64"), self.params.bind(high, "Int64")
        return {
            "eq": f"({us} >= {lo} AND {us} < {hi})",
            "neq": f"({us} < {lo} OR {us} >= {hi})",
            "gt": f"({us} >= {hi})",
            "gte": f"({us} >= {lo})",
            "lt": f"({us} < {lo})",
            "lte": f"({us} < {hi})",
        }[cond.op]

    def persons(self) -> str:
        """Each live person's newest properties in the persons mirror."""
        return live_persons(scope_param(self.ctx, self.params))


def adhoc_rows(
    plan: Plan, ctx: ReportContext, buckets: dict[str, Buckets]
) -> tuple[list[tuple[Any, ...]], int]:
    """The result rows of ``plan`` (one value per select item, in order) and the number of
    bound parameters."""
    params = Params()
    build = _Builder(ctx, buckets, params)
    source = f"{person_events(ctx, params)} AS e"
    if plan.needs_persons:
        source += f" LEFT JOIN {build.persons()} AS pp ON pp.person_key = e.person_id"
    conditions = [build.condition(c) for c in plan.conditions]
    inner_columns = [
        f"{build.value_of(item.field, item.aggregate in {'sum', 'avg', 'min', 'max'})} AS f{i}"
        for i, item in enumerate(plan.items)
        if item.field is not None
    ] or ["1 AS f_id"]
    inner = f"SELECT {', '.join(inner_columns)} FROM {source}"
    if conditions:
        inner += f" WHERE {' AND '.join(conditions)}"
    outer_columns = []
    for i, item in enumerate(plan.items):
        if item.aggregate is None:
            value = f"f{i}"
        elif item.aggregate == "count":
            value = "count()"
        else:
            value = f"{_AGGREGATES[item.aggregate]}(f{i})"
        outer_columns.append(f"{value} AS c{i}")
    sql = f"SELECT {', '.join(outer_columns)} FROM ({inner})"
    if plan.grouped:
        sql += f" GROUP BY {', '.join(f'f{i}' for i in plan.grouped)}"
    order = ", ".join(f"c{i} {'DESC' if desc else 'ASC'} NULLS LAST" for i, desc in plan.order)
    sql += f" ORDER BY {order} LIMIT {params.bind(plan.limit, 'UInt32')}"
    return rows(sql, params), len(params.values)
