"""ClickHouse SQL building blocks that mean what ``queries/sql.py``, ``queries/filters.py``,
``queries/segments.py`` and ``queries/context.py`` mean on SQLite and PostgreSQL.

Every value from a request goes to the server as a bound parameter (``{p0:String}``, bound by
clickhouse-connect's server-side binding), never formatted into the SQL text; only names this
module chooses (parameter names, table names) are. The rules that keep numbers identical:

- **Events are read once per ``(scope_id, uuid)``** (:func:`scoped_events`) on a server: the
  store can hold a duplicate when two processes insert the same uuid at the same instant; the
  copy with the lowest ingestion ``seq`` is kept, as the SQL store keeps the first insert
  (:func:`reads_deduplicate`: not needed on the embedded engine, one process).
- **Persons**: each event carries the person its distinct id had when it was stored
  (``person_id``); while no distinct id of the scope has an override (a merge not yet squashed,
  ``overrides.py``) that is the person, read with no join. Otherwise persons come from the
  versioned distinct-id map, the newest row per distinct id (``argMax(..., version)``), deleted
  rows left out; events whose distinct id maps to no live person are left out, as the SQL inner
  join leaves them out (:func:`person_map`). Both give the same persons (:func:`person_events`).
- **Property text** is the JSON value's text (``true``, ``5``, ``pro``), NULL when missing or
  JSON null; numbers only from JSON numbers (:func:`prop_text`, :func:`prop_number`).
- **Sampling** keeps the persons ``queries/sql.py:in_sample`` keeps (the same hash).
- **Buckets** are the ones ``queries/buckets.py`` computes in Python, passed as their bounds in
  µs (:func:`bucket_index`): no dependence on ClickHouse's time-zone tables.
- Aliases never reuse a column's name (an alias shadows the column even inside an aggregate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from ...events.validation import to_micros
from ...queries.sql import check_property_key
from .schema import DISTINCT_IDS, EVENTS, PERSONS

if TYPE_CHECKING:
    from ...queries.buckets import Buckets
    from ...queries.context import ReportContext
    from ...queries.filters import PropertyFilter
    from ...queries.segments import Segment

#: Knuth's multiplicative hash, as ``queries/sql.py`` samples persons.
_HASH_MULTIPLIER = 2654435761
_NUMERIC = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

#: Settings every report query runs with: exact semantics first (a LEFT JOIN miss is NULL, as
#: in SQL), and the hash join built from the right (small) side as written.
REPORT_SETTINGS: dict[str, Any] = {
    "join_use_nulls": 1,
    "query_plan_join_swap_table": "false",
}

#: For a read with no filter on the event name (volume): the events-by-name projection
#: (``schema.EVENTS_BY_EVENT``) prunes nothing then, yet ClickHouse picks it whenever it holds
#: the columns read, and reads slower through it (measured: the 1M-event volume per day 23 ms
#: through it, 17 ms from the table).
NO_PROJECTIONS: dict[str, Any] = {"optimize_use_projections": 0}


@dataclass
class Params:
    """The bound parameters of one statement; :meth:`bind` names a value and returns its
    placeholder."""

    values: dict[str, Any] = field(default_factory=dict)
    #: Scope -> whether it has person overrides, asked once per statement (``person_events``).
    overridden: dict[str, bool] = field(default_factory=dict)

    def bind(self, value: Any, type_: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return "{" + name + ":" + type_ + "}"


def prop_text(properties: str, key: str, params: Params) -> str:
    """The text of a top-level JSON property (Nullable(String)); NULL when absent or null."""
    k = params.bind(check_property_key(key), "String")
    kind = f"JSONType({properties}, {k})"
    return (
        f"multiIf({kind} = 'Null', NULL, {kind} = 'String', "
        f"toNullable(JSONExtractString({properties}, {k})), {kind} = 'Bool', "
        f"toNullable(if(JSONExtractBool({properties}, {k}), 'true', 'false')), "
        f"toNullable(JSONExtractRaw({properties}, {k})))"
    )


def prop_number(properties: str, key: str, params: Params) -> str:
    """A top-level JSON property as Float64 when it is a JSON number, else NULL."""
    k = params.bind(check_property_key(key), "String")
    return (
        f"if(JSONType({properties}, {k}) IN ('Int64', 'UInt64', 'Double'), "
        f"toNullable(JSONExtractFloat({properties}, {k})), NULL)"
    )


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def property_condition(flt: PropertyFilter, properties: str, params: Params) -> str:
    """``PropertyFilter.condition`` in ClickHouse SQL, with the same NULL semantics: a missing
    property never equals, is never greater, and always "does not contain"."""
    text = prop_text(properties, flt.key, params)
    if flt.op == "is_set":
        return f"({text} IS NOT NULL)"
    if flt.op == "is_not_set":
        return f"({text} IS NULL)"
    if flt.op in _NUMERIC:
        number = prop_number(properties, flt.key, params)
        bound = params.bind(float(flt.value), "Float64")  # type: ignore[arg-type]
        return f"ifNull({number} {_NUMERIC[flt.op]} {bound}, 0)"
    return text_condition(text, flt.op, flt.value, params)


def text_condition(text: str, op: str, value: Any, params: Params) -> str:
    """A comparison of the Nullable(String) expression ``text`` (``eq``, ``neq``, ``in``,
    ``not_in``, ``contains``, ``not_contains``, ``is_set``, ``is_not_set``) with the SQL NULL
    semantics: NULL never equals, is never in, and always "does not contain"."""
    if op == "is_set":
        return f"({text} IS NOT NULL)"
    if op == "is_not_set":
        return f"({text} IS NULL)"
    if op in {"in", "not_in"}:
        values = params.bind([_as_text(v) for v in value], "Array(String)")
        inside = f"has({values}, assumeNotNull({text}))"
        if op == "in":
            return f"({text} IS NOT NULL AND {inside})"
        return f"({text} IS NULL OR NOT {inside})"
    value = _as_text(value)
    if op == "eq":
        return f"ifNull({text} = {params.bind(value, 'String')}, 0)"
    if op == "neq":
        return f"({text} IS NULL OR {text} != {params.bind(value, 'String')})"
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = params.bind("%" + escaped + "%", "String")
    # Case-insensitive, as on PostgreSQL (lower() on both sides; UTF-8 aware).
    contains = f"lowerUTF8(assumeNotNull({text})) LIKE lowerUTF8({pattern})"
    if op == "contains":
        return f"({text} IS NOT NULL AND {contains})"
    return f"({text} IS NULL OR NOT ({contains}))"


def chosen_event(event: str | None, params: Params) -> str:
    """The events a report counts: one name, or (None) any active event."""
    return "active" if event is None else f"event = {params.bind(event, 'String')}"


def top_groups_sql(source: str, limit: int, params: Params) -> str:
    """The statement of a breakdown's top ``limit`` values of ``grp`` in ``source`` by rows,
    ties by code point, missing last (``queries.sql.top_values``)."""
    return (
        f"SELECT grp FROM {source} GROUP BY grp ORDER BY count() DESC, grp ASC NULLS LAST "
        f"LIMIT {params.bind(limit, 'Int64')}"
    )


def other_group(top: list[str | None], params: Params, other: str) -> str:
    """``grp`` if in ``top``, else ``other`` (a missing value too, unless it is in ``top``):
    ``queries.sql.other_group``."""
    named = params.bind([value for value in top if value is not None], "Array(String)")
    missing = "grp IS NULL, CAST(NULL AS Nullable(String)), " if None in top else ""
    return (
        f"multiIf(grp IS NOT NULL AND has({named}, assumeNotNull(grp)), grp, {missing}"
        f"toNullable({params.bind(other, 'String')}))"
    )


def scope_param(ctx: ReportContext, params: Params) -> str:
    return params.bind(ctx.scope_id, "String")


def micros(value: int, params: Params) -> str:
    """A µs timestamp as a ``DateTime64(6)`` to compare ``ts`` with (uses the sort key)."""
    return f"fromUnixTimestamp64Micro({params.bind(value, 'Int64')}, 'UTC')"


def scoped_events(
    ctx: ReportContext,
    params: Params,
    *,
    bounds: tuple[int | None, int | None] | None = None,
    where: Sequence[str] = (),
    stored_person: bool = False,
) -> str:
    """A subquery: the scope's events in the report's range (or in ``bounds``, ``[from, to)``
    in µs, ``None`` for no bound), matching the report's property filters, one row per uuid,
    with ``us`` (the µs integer of ``ts``). ``where`` are extra conditions on raw columns.
    ``stored_person``: with the ``person_id`` stored on each event too."""
    scope = scope_param(ctx, params)
    start, stop = (ctx.from_us, ctx.to_us) if bounds is None else bounds
    conditions = [
        f"scope_id = {scope}",
        *([] if start is None else [f"ts >= {micros(start, params)}"]),
        *([] if stop is None else [f"ts < {micros(stop, params)}"]),
        *(property_condition(f, "properties", params) for f in ctx.filters),
        *where,
    ]
    once = " ORDER BY seq LIMIT 1 BY uuid" if reads_deduplicate() else ""
    return (
        "(SELECT uuid, event, distinct_id, ts, toUnixTimestamp64Micro(ts) AS us, session_id, "
        f"active, properties, seq{', person_id' if stored_person else ''} FROM {EVENTS} "
        f"WHERE {' AND '.join(conditions)}{once})"
    )


def reads_deduplicate() -> bool:
    """Whether reports must read events once per uuid themselves: on a server, where several
    processes may insert one uuid at the same instant. The embedded engine is one process whose
    look-up and insert share a lock, so its store never holds a duplicate, and the read skips
    the cost (measured: 0.45 s per million events in range for ``ORDER BY seq LIMIT 1 BY uuid``
    against 0.003 s for a plain count)."""
    from ...state import current_state

    return not current_state().event_store.url.embedded  # type: ignore[attr-defined]


def person_map(ctx: ReportContext, params: Params) -> str:
    """A subquery ``(map_distinct_id, map_person_id)``: each distinct id's newest mapping,
    deleted ones left out. ``FINAL`` keeps the row of the highest version per distinct id (the
    table's sorting key) before ``is_deleted`` is looked at, as ``argMax(..., version)`` would:
    measured 3x cheaper than that ``GROUP BY`` on 80,000 ids, and every report joins it."""
    scope = scope_param(ctx, params)
    return (
        "(SELECT distinct_id AS map_distinct_id, person_id AS map_person_id FROM "
        f"(SELECT distinct_id, person_id, is_deleted FROM {DISTINCT_IDS} FINAL "
        f"WHERE scope_id = {scope}) WHERE is_deleted = 0)"
    )


def live_persons(scope: str) -> str:
    """A subquery ``(person_key, person_properties)``: each live person's newest properties in
    the persons mirror of ``scope`` (a bound parameter). A deleted person has no row, as in
    SQL, whose ``persons`` table drops it: a ``LEFT JOIN`` on it misses, as SQL's does."""
    return (
        "(SELECT id AS person_key, argMax(properties, version) AS person_properties "
        f"FROM {PERSONS} WHERE scope_id = {scope} GROUP BY id "
        "HAVING argMax(is_deleted, version) = 0)"
    )


def person_events(
    ctx: ReportContext,
    params: Params,
    *,
    bounds: tuple[int | None, int | None] | None = None,
    where: Sequence[str] = (),
) -> str:
    """A subquery: :func:`scoped_events` with ``person_id``, limited to the report's segment
    and sample (``ReportContext.rows`` of the SQL path).

    With no override in the scope, every stored ``person_id`` is its distinct id's person now
    (an event whose person was unknown, 0, counts for none, as an unmapped one in SQL), so it
    is read as stored; else through the distinct-id map (measured at 1M events: the DAU series
    45 ms against 94 ms, the funnel 58 ms against 83 ms)."""
    from .overrides import has_overrides

    conditions = person_conditions(ctx, params, "person_id")
    if ctx.scope_id not in params.overridden:
        params.overridden[ctx.scope_id] = has_overrides(ctx.scope_id)
    if not params.overridden[ctx.scope_id]:
        stored = scoped_events(
            ctx, params, bounds=bounds, where=[*where, "person_id != 0"], stored_person=True
        )
        if not conditions:
            return stored
        return f"(SELECT * FROM {stored} WHERE {' AND '.join(conditions)})"
    evs = scoped_events(ctx, params, bounds=bounds, where=where)
    mapping = person_map(ctx, params)
    return (
        "(SELECT e.uuid AS uuid, e.event AS event, e.distinct_id AS distinct_id, e.ts AS ts, "
        "e.us AS us, e.session_id AS session_id, e.active AS active, "
        "e.properties AS properties, e.seq AS seq, m.map_person_id AS person_id "
        f"FROM {evs} AS e INNER JOIN {mapping} AS m ON e.distinct_id = m.map_distinct_id"
        + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
        + ")"
    )


def person_conditions(ctx: ReportContext, params: Params, person_id: str) -> list[str]:
    """``ReportContext.sampled``: conditions keeping the persons of the segment and sample."""
    conditions = [] if ctx.segment is None else [segment_condition(ctx.segment, person_id, params)]
    if ctx.sample is not None:
        threshold = params.bind(round(ctx.sample * 10_000), "Int64")
        conditions.append(f"(({person_id} * {_HASH_MULTIPLIER}) % 10000) < {threshold}")
    return conditions


def segment_condition(segment: Segment, person_id: str, params: Params) -> str:
    """``person_id`` belongs to ``segment``. Dynamic: the newest version of each live person
    in the persons mirror, filtered on its properties. Static: the members (kept in SQL) are
    read there and bound as an array of distinct ids, resolved through the newest map rows."""
    scope = params.bind(segment.scope_id, "String")
    if segment.kind == "dynamic":
        from ...queries.filters import PropertyFilter

        rules = [
            property_condition(PropertyFilter.model_validate(f), "person_properties", params)
            for f in segment.filters
        ]
        members = f"SELECT person_key FROM {live_persons(scope)} WHERE " + (
            " AND ".join(rules) or "1"
        )
        return f"{person_id} IN ({members})"
    ids = params.bind(static_members(segment), "Array(String)")
    members = (
        "SELECT map_person_id FROM (SELECT distinct_id, argMax(person_id, version) AS "
        f"map_person_id, argMax(is_deleted, version) AS map_deleted FROM {DISTINCT_IDS} "
        f"WHERE scope_id = {scope} AND has({ids}, distinct_id) GROUP BY distinct_id) "
        "WHERE map_deleted = 0"
    )
    return f"{person_id} IN ({members})"


def static_members(segment: Segment) -> list[str]:
    """The distinct ids of a static segment, from the SQL database (at most 100k)."""
    from sqlalchemy import select

    from ...db.tables import segment_members
    from ...state import current_state

    query = select(segment_members.c.distinct_id).where(segment_members.c.segment_id == segment.id)
    with current_state().engine.connect() as connection:
        return list(connection.execute(query).scalars())


def bare_context(scope_id: str) -> ReportContext:
    """A context of one scope without range, filters, segment or sample, for readers that have
    no report context (a person's sessions on the timeline); always pass ``bounds``."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from ...queries.context import ReportContext

    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return ReportContext(scope_id, ZoneInfo("UTC"), epoch, epoch)


def bucket_index(buckets: Buckets, us: str, params: Params) -> str:
    """The bucket index of ``us`` (µs): -1 before the first bucket, ``len`` after the last, as
    ``Buckets.index`` computes it in SQL (equal widths: one division; else a count of bounds)."""
    bounds = [to_micros(start) for start in buckets.starts] + [buckets.end_us]
    widths = {b - a for a, b in pairwise(bounds)}
    first = params.bind(bounds[0], "Int64")
    last = params.bind(bounds[-1], "Int64")
    if len(widths) == 1:
        width = params.bind(widths.pop(), "Int64")
        return (
            f"multiIf({us} < {first}, -1, {us} >= {last}, {len(bounds) - 1}, "
            f"intDiv({us} - {first}, {width}))"
        )
    if len(bounds) == 1:
        return f"if({us} < {first}, -1, 0)"
    array = params.bind(bounds, "Array(Int64)")
    return f"toInt64(arrayCount(b -> b <= {us}, {array})) - 1"
