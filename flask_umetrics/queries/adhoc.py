"""The safe ad-hoc query (``ana``'s query): a JSON spec compiled to parameterised SQL.

Only whitelisted fields, operators and aggregates are accepted; everything the caller writes
(property keys, values) reaches the database as a bound parameter, never as SQL text or an
identifier. The inner query picks the fields (so an expression with bound parameters appears
once) and the outer one groups, aggregates, orders and limits over its columns.

This module is the one definition (validation into a :class:`Plan`, limits, shaping of rows);
only the SQL differs by engine: :func:`compile_query` here for SQLite and PostgreSQL,
``engines/clickhouse/adhoc.py`` for a ClickHouse event store.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy.sql import ColumnElement, Select

from ..db.tables import events, person_distinct_ids, persons
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from ..events.validation import from_micros, to_micros
from ..state import current_state
from .buckets import Buckets, floor_to, next_start
from .connection import report_connection
from .context import ReportContext, report_context
from .filters import Operator, PropertyFilter
from .sql import prop_number, prop_text

MAX_LIMIT = 10_000
MAX_BUCKETS = 3_700  # ten years of days: a bounded number of SQL parameters
MAX_VALUES = 1_000
MAX_VALUE_LENGTH = 1_000
COLUMNS = ("event", "distinct_id", "person_id", "session_id", "timestamp")
CALENDAR = ("day", "week", "month")
AGGREGATES = ("count", "count_distinct", "sum", "avg", "min", "max")
_AGGREGATE = re.compile(r"^(count|count_distinct|sum|avg|min|max)\((.*)\)$", re.DOTALL)
_TEXT_OPS = {"contains", "not_contains"}
_ORDER_OPS = {"gt", "gte", "lt", "lte"}
TEXT_COLUMNS = ("event", "distinct_id", "session_id")

Scalar = str | int | float | bool


class SelectItem(BaseModel):
    """``{"expr": "sum(properties.amount)", "alias": "revenue"}``."""

    model_config = ConfigDict(extra="forbid")
    expr: str = Field(min_length=1, max_length=300)
    alias: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class Condition(BaseModel):
    """One ``where`` condition; ``PropertyFilter`` semantics (text compare, numbers for gt/lt)."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(min_length=1, max_length=300)
    op: Operator = "eq"
    value: Scalar | list[Scalar] | None = None


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str = Field(min_length=1, max_length=300)
    dir: Literal["asc", "desc"] = "asc"


class QuerySpec(BaseModel):
    """What to select from the scope's events in ``[date_from, date_to)`` (default: the last
    30 days), filtered, grouped, ordered and limited."""

    model_config = ConfigDict(extra="forbid")
    select: list[SelectItem] = Field(min_length=1, max_length=50)
    where: list[Condition] = Field(default_factory=list, max_length=50)
    group_by: list[str] = Field(default_factory=list, max_length=50)
    order_by: list[OrderItem] = Field(default_factory=list, max_length=50)
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    date_from: datetime | None = None
    date_to: datetime | None = None

    @field_validator("select", mode="before")
    @classmethod
    def _strings_are_expressions(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"expr": item} if isinstance(item, str) else item for item in value]
        return value


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    sql_params: int


@dataclass(frozen=True)
class FieldRef:
    """A parsed field: what it is, and its key for ``properties.*`` fields."""

    kind: str  # a name of COLUMNS or CALENDAR, "property" or "person_property"
    key: str | None = None

    @property
    def text(self) -> str:
        if self.kind == "property":
            return f"properties.{self.key}"
        if self.kind == "person_property":
            return f"person.properties.{self.key}"
        return self.kind


def parse_field(text: str, where: str) -> FieldRef:
    """A whitelisted field, or a ``ValidationError`` naming ``where``."""
    if text in COLUMNS or text in CALENDAR:
        return FieldRef(text)
    for prefix, kind in (("person.properties.", "person_property"), ("properties.", "property")):
        if text.startswith(prefix):
            key = text[len(prefix) :]
            if not key or len(key) > 200 or "\x00" in key:
                raise ValidationError(where, "a property key must be 1-200 characters")
            if '"' in key or "\\" in key:
                # SQLite's JSON paths cannot address such keys; refuse rather than differ.
                raise ValidationError(where, "a property key may not contain '\"' or '\\'")
            return FieldRef(kind, key)
    raise ValidationError(
        where,
        f"unknown field {text!r}; use one of {', '.join(COLUMNS + CALENDAR)}, "
        "properties.<key> or person.properties.<key>",
    )


@dataclass(frozen=True)
class Item:
    """A select item: a plain field or an aggregate over one."""

    text: str
    name: str  # the column name in the result: the alias, else the text
    aggregate: str | None
    field: FieldRef | None  # None only for count()


def parse_item(item: SelectItem, where: str) -> Item:
    text = item.expr.strip()
    name = item.alias or text
    match = _AGGREGATE.match(text)
    if match is None:
        if "(" in text:
            raise ValidationError(
                where, f"unknown aggregate in {text!r}; use one of {', '.join(AGGREGATES)}"
            )
        return Item(text, name, None, parse_field(text, where))
    aggregate, inner = match.group(1), match.group(2).strip()
    if aggregate == "count":
        if inner:
            raise ValidationError(where, "count() takes no argument; use count_distinct(<field>)")
        return Item(text, name, aggregate, None)
    field = parse_field(inner, where)
    if aggregate != "count_distinct" and field.kind not in {"property", "person_property"}:
        raise ValidationError(where, f"{aggregate}() needs a numeric properties.<key>")
    return Item(text, name, aggregate, field)


@dataclass(frozen=True)
class Where:
    """A validated ``where`` condition, the same for every engine. ``values`` are converted
    for the field: texts (event, distinct_id, session_id), integers (person_id), µs
    (timestamp) or ``(low, high)`` µs ranges (day, week, month); empty for is_set/is_not_set.
    Properties carry their ``PropertyFilter`` instead."""

    field: FieldRef
    op: str
    values: tuple[Any, ...] = ()
    filter: PropertyFilter | None = None


@dataclass(frozen=True)
class Plan:
    """A validated spec: the select items, the grouped item indexes, the order (item index,
    descending), the conditions and the limit."""

    items: list[Item]
    grouped: list[int]
    order: list[tuple[int, bool]]
    conditions: list[Where]
    limit: int

    @property
    def needs_persons(self) -> bool:
        """Whether a person property is read (the persons join is needed)."""
        fields = [item.field for item in self.items] + [w.field for w in self.conditions]
        return any(f is not None and f.kind == "person_property" for f in fields)


class _Compiler:
    """Validates conditions and buckets over one scope and range, turns fields into SQL and
    prints values; remembers which joins are needed."""

    def __init__(self, ctx: ReportContext) -> None:
        self.ctx = ctx
        self.needs_persons = False
        self.buckets: dict[str, Buckets] = {}

    def bucket(self, interval: str) -> Buckets:
        if interval not in self.buckets:
            buckets = self.ctx.buckets(interval, field="date_from")
            if len(buckets.starts) > MAX_BUCKETS:
                raise ValidationError(
                    "date_from", f"the range holds more than {MAX_BUCKETS} {interval} buckets"
                )
            self.buckets[interval] = buckets
        return self.buckets[interval]

    def properties(self, field: FieldRef) -> Any:
        if field.kind == "person_property":
            self.needs_persons = True
            return persons.c.properties
        return events.c.properties

    def value_of(self, field: FieldRef, numeric: bool = False) -> ColumnElement[Any]:
        """The SQL value of a field (numbers for sum/avg/min/max)."""
        if field.kind in {"property", "person_property"}:
            column = self.properties(field)
            key = field.key or ""
            return prop_number(column, key) if numeric else prop_text(column, key)
        if field.kind in CALENDAR:
            return self.bucket(field.kind).index(events.c.ts)
        return {
            "event": events.c.event,
            "distinct_id": events.c.distinct_id,
            "person_id": person_distinct_ids.c.person_id,
            "session_id": events.c.session_id,
            "timestamp": events.c.ts,
        }[field.kind]

    def resolve(self, cond: Condition, where: str) -> Where:
        """Validate a condition and convert its values (``ValidationError`` naming ``where``)."""
        field = parse_field(cond.field, f"{where}.field")
        _check_shape(cond, f"{where}.value")
        if field.kind in {"property", "person_property"}:
            try:
                spec = PropertyFilter(key=field.key or "", op=cond.op, value=cond.value)
            except PydanticValidationError as exc:
                raise ValidationError(f"{where}.value", exc.errors()[0]["msg"]) from exc
            return Where(field, cond.op, filter=spec)
        if field.kind in TEXT_COLUMNS:
            if cond.op in _ORDER_OPS:
                raise ValidationError(f"{where}.op", f"'{cond.op}' does not apply to {field.kind}")
            convert: Any = _as_text
        elif cond.op in _TEXT_OPS:
            raise ValidationError(f"{where}.op", f"'{cond.op}' does not apply to {field.kind}")
        elif field.kind == "person_id":
            convert = lambda v: _integer(v, where)  # noqa: E731
        elif field.kind == "timestamp":
            convert = lambda v: self.micros(v, where)  # noqa: E731
        else:
            convert = lambda v: self.calendar_bounds(field.kind, v, where)  # noqa: E731
        if cond.op in {"is_set", "is_not_set"}:
            return Where(field, cond.op)
        raw = cond.value if isinstance(cond.value, list) else [cond.value]
        return Where(field, cond.op, tuple(convert(v) for v in raw))

    def condition(self, cond: Where) -> ColumnElement[bool]:
        """The SQL of a resolved condition."""
        if cond.filter is not None:
            return cond.filter.condition(self.properties(cond.field))
        kind = cond.field.kind
        if kind in TEXT_COLUMNS:
            return _text_condition(self.value_of(cond.field), cond)
        if kind == "person_id":
            return _ordered_condition(person_distinct_ids.c.person_id, cond)
        if kind == "timestamp":
            return _ordered_condition(events.c.ts, cond)
        return _calendar_condition(cond)

    def micros(self, value: Any, where: str) -> int:
        return to_micros(_moment(value, self.ctx.zone, f"{where}.value"))

    def calendar_bounds(self, interval: str, value: Any, where: str) -> tuple[int, int]:
        """``day``/``week``/``month`` compare bucket starts: the µs range of ``value``'s bucket."""
        start = floor_to(_moment(value, self.ctx.zone, f"{where}.value"), interval, self.ctx.zone)
        return to_micros(start), to_micros(next_start(start, interval, self.ctx.zone))

    def output(self, field: FieldRef | None, value: Any) -> Any:
        """A database value as the JSON the caller sees (ISO times, bucket starts)."""
        if value is None or field is None:
            return value
        if field.kind == "timestamp":
            return from_micros(int(value)).astimezone(self.ctx.zone).isoformat()
        if field.kind in CALENDAR:
            starts = self.bucket(field.kind).starts
            index = int(value)
            return starts[index].isoformat() if 0 <= index < len(starts) else None
        if field.kind in {"property", "person_property"} and isinstance(value, str):
            return _canonical_json_text(value)
        return value


def _check_shape(cond: Condition, where: str) -> None:
    """The value's shape must fit the operator: none, one value, or a non-empty list."""
    values = cond.value if isinstance(cond.value, list) else [cond.value]
    if cond.op in {"is_set", "is_not_set"}:
        return
    if cond.op in {"in", "not_in"}:
        if not isinstance(cond.value, list) or not cond.value:
            raise ValidationError(where, f"'{cond.op}' needs a non-empty list")
        if len(cond.value) > MAX_VALUES:
            raise ValidationError(where, f"at most {MAX_VALUES} values")
    elif cond.value is None or isinstance(cond.value, list):
        raise ValidationError(where, f"'{cond.op}' needs a single value")
    for value in values:
        if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
            raise ValidationError(where, f"strings are at most {MAX_VALUE_LENGTH} characters")
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError(where, "strings must not contain NUL characters")
        if isinstance(value, str) and not _is_unicode(value):
            # A lone surrogate ("\\ud800" in the JSON) cannot be sent to any database.
            raise ValidationError(where, "strings must be valid Unicode (no lone surrogates)")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(where, "numbers must be finite")


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _text_condition(column: ColumnElement[Any], cond: Where) -> ColumnElement[bool]:
    """Same semantics as ``PropertyFilter`` on a text column (NULL counts as "not equal")."""
    op = cond.op
    if op == "is_set":
        return column.is_not(None)
    if op == "is_not_set":
        return column.is_(None)
    if op in {"in", "not_in"}:
        inside = column.in_(list(cond.values))
        return inside if op == "in" else or_(column.is_(None), not_(inside))
    value: str = cond.values[0]
    if op == "eq":
        return column == value
    if op == "neq":
        return or_(column.is_(None), column != value)
    pattern = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    contains = func.lower(column).like(func.lower(pattern), escape="\\")
    return contains if op == "contains" else or_(column.is_(None), not_(contains))


def _ordered_condition(column: Any, cond: Where) -> ColumnElement[bool]:
    op = cond.op
    if op == "is_set":
        return column.is_not(None)  # type: ignore[no-any-return]
    if op == "is_not_set":
        return column.is_(None)  # type: ignore[no-any-return]
    if op in {"in", "not_in"}:
        inside = column.in_(list(cond.values))
        return inside if op == "in" else not_(inside)  # type: ignore[no-any-return]
    bound = cond.values[0]
    return {  # type: ignore[no-any-return]
        "eq": column == bound,
        "neq": column != bound,
        "gt": column > bound,
        "gte": column >= bound,
        "lt": column < bound,
        "lte": column <= bound,
    }[op]


def _calendar_condition(cond: Where) -> ColumnElement[bool]:
    """Bucket comparisons as time ranges on ``ts`` (``cond.values`` are µs ranges)."""
    ts = events.c.ts
    if cond.op in {"is_set", "is_not_set"}:
        return ts.is_not(None) if cond.op == "is_set" else ts.is_(None)
    if cond.op in {"in", "not_in"}:
        inside = or_(*(and_(ts >= lo, ts < hi) for lo, hi in cond.values))
        return inside if cond.op == "in" else not_(inside)
    low, high = cond.values[0]
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": and_(ts >= low, ts < high),
        "neq": or_(ts < low, ts >= high),
        "gt": ts >= high,
        "gte": ts >= low,
        "lt": ts < low,
        "lte": ts < high,
    }
    return conditions[cond.op]


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValidationError(f"{where}.value", "person_id values must be integers")
    try:
        number = int(value)
    except ValueError as exc:
        raise ValidationError(f"{where}.value", "person_id values must be integers") from exc
    if not -(2**63) <= number < 2**63:
        raise ValidationError(f"{where}.value", "person_id is out of range")
    return number


def _moment(value: Any, zone: ZoneInfo, where: str) -> datetime:
    """ISO 8601 text as an aware datetime; a date alone (or no offset) is in ``zone``."""
    if not isinstance(value, str):
        raise ValidationError(where, "must be an ISO 8601 date or date-time")
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=zone)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(where, "must be an ISO 8601 date or date-time") from exc
    moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
    if (
        not datetime(1970, 1, 1, tzinfo=timezone.utc)
        <= moment
        < datetime(9000, 1, 1, tzinfo=timezone.utc)
    ):
        raise ValidationError(where, "is out of range")
    return moment


def _canonical_json_text(text: str) -> str:
    """JSON objects and arrays print differently on the two databases; print them one way."""
    if not text or text[0] not in "[{":
        return text
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return text


def _plan(spec: QuerySpec) -> tuple[list[Item], list[int], list[tuple[int, bool]]]:
    """Parse select, group_by and order_by: the items, the grouped item indexes, the order."""
    items = [parse_item(item, f"select[{i}]") for i, item in enumerate(spec.select)]
    names: dict[str, int] = {}
    for index, item in enumerate(items):
        for label in {item.text, item.name}:
            if names.setdefault(label, index) != index:
                raise ValidationError(f"select[{index}]", f"{label!r} is selected twice")
    plain = [i for i, item in enumerate(items) if item.aggregate is None]
    grouped: list[int] = []
    for position, text in enumerate(spec.group_by):
        found = names.get(text.strip())
        if found is None or items[found].aggregate is not None:
            raise ValidationError(
                f"group_by[{position}]", f"{text!r} must be a plain field present in select"
            )
        grouped.append(found)
    if grouped:
        missing = [items[i].text for i in plain if i not in grouped]
        if missing:
            raise ValidationError("group_by", f"must also list {', '.join(map(repr, missing))}")
    elif len(plain) < len(items):
        grouped = plain  # aggregates with plain fields: group by those fields
    order: list[tuple[int, bool]] = []
    for position, entry in enumerate(spec.order_by):
        chosen = names.get(entry.field.strip())
        if chosen is None:
            raise ValidationError(
                f"order_by[{position}].field", f"{entry.field!r} is not a select item or alias"
            )
        order.append((chosen, entry.dir == "desc"))
    used = {index for index, _ in order}
    # Ties are broken by every other column, so both databases return the same rows.
    order += [(index, False) for index in range(len(items)) if index not in used]
    return items, grouped, order


def prepare(spec: QuerySpec, ctx: ReportContext) -> tuple[Plan, _Compiler]:
    """Validate a spec for either engine: its plan, and the compiler that holds its buckets
    and prints the values."""
    items, grouped, order = _plan(spec)
    compiler = _Compiler(ctx)
    conditions = [compiler.resolve(c, f"where[{i}]") for i, c in enumerate(spec.where)]
    for item in items:
        if item.field is not None and item.field.kind in CALENDAR:
            compiler.bucket(item.field.kind)  # refuses a range with too many buckets
    return Plan(items, grouped, order, conditions, spec.limit), compiler


def compile_query(plan: Plan, compiler: _Compiler) -> Select[Any]:
    """The SQLite / PostgreSQL statement of a plan."""
    ctx = compiler.ctx
    items = plan.items
    conditions = [compiler.condition(c) for c in plan.conditions]
    inner_columns = []
    for index, item in enumerate(items):
        if item.field is not None:
            numeric = item.aggregate in {"sum", "avg", "min", "max"}
            inner_columns.append(compiler.value_of(item.field, numeric).label(f"f{index}"))
    source = events.join(
        person_distinct_ids,
        and_(
            person_distinct_ids.c.scope_id == events.c.scope_id,
            person_distinct_ids.c.distinct_id == events.c.distinct_id,
        ),
    )
    if compiler.needs_persons:
        source = source.outerjoin(persons, persons.c.id == person_distinct_ids.c.person_id)
    if not inner_columns:
        inner_columns.append(events.c.id.label("f_id"))
    inner = (
        select(*inner_columns)
        .select_from(source)
        .where(events.c.scope_id == ctx.scope_id, *ctx.in_range(), *conditions)
        .subquery("q")
    )
    outer_columns: list[ColumnElement[Any]] = []
    for index, item in enumerate(items):
        column = inner.c[f"f{index}"] if item.field is not None else None
        if item.aggregate is None:
            value: ColumnElement[Any] = column  # type: ignore[assignment]
        elif item.aggregate == "count":
            value = func.count()
        elif item.aggregate == "count_distinct":
            value = func.count(column.distinct())  # type: ignore[union-attr]
        else:
            value = getattr(func, item.aggregate)(column)
        outer_columns.append(value.label(f"c{index}"))
    query = select(*outer_columns).select_from(inner)
    if plan.grouped:
        query = query.group_by(*(inner.c[f"f{i}"] for i in plan.grouped))
    labels = {f"c{i}": outer_columns[i] for i in range(len(items))}
    return query.order_by(
        *(
            (labels[f"c{i}"].desc() if desc else labels[f"c{i}"].asc()).nulls_last()
            for i, desc in plan.order
        )
    ).limit(plan.limit)


def run_query(spec: QuerySpec, *, scope_id: str | None = None) -> QueryResult:
    """Run a validated spec; ``ValidationError`` names the offending part of the spec.
    ``sql_params`` counts the statement's bound parameters on the engine that ran it."""
    ctx = report_context(scope_id=scope_id, date_from=spec.date_from, date_to=spec.date_to)
    plan, compiler = prepare(spec, ctx)
    raw: Sequence[Sequence[Any]]
    if is_clickhouse():
        from ..engines.clickhouse.adhoc import adhoc_rows

        raw, params = adhoc_rows(plan, ctx, compiler.buckets)
    else:
        query = compile_query(plan, compiler)
        params = len(query.compile(dialect=current_state().engine.dialect).params)
        with report_connection() as connection:
            raw = connection.execute(query).all()
    rows = []
    for row in raw:
        values: list[Any] = []
        for item, value in zip(plan.items, row, strict=True):
            if item.aggregate == "count" or item.aggregate == "count_distinct":
                values.append(int(value))
            elif item.aggregate is not None:
                values.append(None if value is None else float(value))
            else:
                values.append(compiler.output(item.field, value))
        rows.append(values)
    return QueryResult([item.name for item in plan.items], rows, params)
