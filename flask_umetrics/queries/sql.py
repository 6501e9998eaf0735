"""SQL building blocks that mean the same on SQLite and PostgreSQL.

JSON property values are compared as text (``'true'``, ``'5'``, ``'5.5'``, ``'pro'``) or as
numbers (only JSON numbers; the string ``"5"`` is not a number), whatever the dialect.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Float, Integer, String, and_, case, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.expression import FunctionElement

from ..db.tables import events, person_distinct_ids
from ..errors import ValidationError


def check_property_key(key: str, field: str = "key") -> str:
    """Refuse keys SQLite's JSON paths cannot address, so both databases always agree."""
    if not isinstance(key, str) or not key or len(key) > 200:
        raise ValidationError(field, "a property key must be 1-200 characters")
    if '"' in key or "\\" in key:
        raise ValidationError(field, "a property key may not contain '\"' or '\\'")
    return key


def _json_path(key: str) -> str:
    return '$."' + key + '"'


class prop_text(FunctionElement[str]):
    """The text of a top-level JSON property; NULL when absent or JSON null."""

    type = String()
    inherit_cache = True

    def __init__(self, column: Any, key: str) -> None:
        super().__init__(column, *_key_clauses(key))


class prop_number(FunctionElement[float]):
    """A top-level JSON property as a float when it is a JSON number, else NULL."""

    type = Float()
    inherit_cache = True

    def __init__(self, column: Any, key: str) -> None:
        super().__init__(column, *_key_clauses(key))


def _key_clauses(key: str) -> tuple[Any, Any]:
    """The key and its JSON path as bound parameters of the element itself: a statement's
    cache key covers its own parameters, so a cached statement never keeps another key."""
    check_property_key(key)
    return literal(key), literal(_json_path(key))


def _arguments(element: FunctionElement[Any], compiler: Any, **kw: Any) -> tuple[str, str, str]:
    column, key, path = list(element.clauses)
    return (
        compiler.process(column, **kw),
        compiler.process(key, **kw),
        compiler.process(path, **kw),
    )


@compiles(prop_text, "postgresql")
def _prop_text_pg(element: prop_text, compiler: Any, **kw: Any) -> str:
    column, key, _ = _arguments(element, compiler, **kw)
    return f"({column} ->> {key})"


@compiles(prop_text, "sqlite")
def _prop_text_sqlite(element: prop_text, compiler: Any, **kw: Any) -> str:
    column, _, path = _arguments(element, compiler, **kw)
    return (
        f"(CASE json_type({column}, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
        f"WHEN 'null' THEN NULL ELSE CAST(json_extract({column}, {path}) AS TEXT) END)"
    )


@compiles(prop_number, "postgresql")
def _prop_number_pg(element: prop_number, compiler: Any, **kw: Any) -> str:
    column, key, _ = _arguments(element, compiler, **kw)
    return (
        f"(CASE WHEN jsonb_typeof({column} -> {key}) = 'number' "
        f"THEN CAST({column} ->> {key} AS DOUBLE PRECISION) END)"
    )


@compiles(prop_number, "sqlite")
def _prop_number_sqlite(element: prop_number, compiler: Any, **kw: Any) -> str:
    column, _, path = _arguments(element, compiler, **kw)
    return (
        f"(CASE WHEN json_type({column}, {path}) IN ('integer', 'real') "
        f"THEN CAST(json_extract({column}, {path}) AS REAL) END)"
    )


def person_events(scope_id: str) -> Select[Any]:
    """Events of a scope with the person each belongs to (through the distinct-id map).

    Columns: ``person_id``, ``event``, ``ts``, ``distinct_id``, ``session_id``, ``active``,
    ``properties``, ``id``. Callers add time, event and property conditions.
    """
    return (
        select(
            person_distinct_ids.c.person_id,
            events.c.event,
            events.c.ts,
            events.c.distinct_id,
            events.c.session_id,
            events.c.active,
            events.c.properties,
            events.c.id,
        )
        .select_from(events)
        .join(
            person_distinct_ids,
            and_(
                person_distinct_ids.c.scope_id == events.c.scope_id,
                person_distinct_ids.c.distinct_id == events.c.distinct_id,
            ),
        )
        .where(events.c.scope_id == scope_id)
    )


def events_of(scope_id: str) -> Select[Any]:
    """Events of a scope without their persons (for reports that count events, not people)."""
    return select(events.c.event, events.c.ts, events.c.properties, events.c.id).where(
        events.c.scope_id == scope_id
    )


#: Knuth's multiplicative hash; person ids stay far below 2**31, so the product fits a BIGINT.
_HASH_MULTIPLIER = 2654435761


def in_sample(person_id: ColumnElement[Any], rate: float) -> ColumnElement[bool]:
    """True for the persons kept by ``sample=rate``: the same persons on both databases."""
    threshold = round(rate * 10_000)
    hashed = (person_id.cast(BigInteger) * _HASH_MULTIPLIER) % 10_000
    return hashed.cast(Integer) < threshold


class by_codepoint(FunctionElement[str]):
    """A text column sorted by code point on both databases.

    PostgreSQL sorts text by the database's collation (``en_US`` puts ``b`` before ``C``);
    SQLite compares bytes. Ties "by name" must break the same way everywhere.
    """

    type = String()
    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)


@compiles(by_codepoint, "postgresql")
def _by_codepoint_pg(element: by_codepoint, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(next(iter(element.clauses)), **kw)} COLLATE "C")'


@compiles(by_codepoint, "sqlite")
def _by_codepoint_sqlite(element: by_codepoint, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(next(iter(element.clauses)), **kw)} COLLATE BINARY)"


#: The group of the values past a breakdown's limit (and of a missing value outside it).
OTHER = "$other"


def top_values(connection: Any, value: ColumnElement[Any], limit: int) -> list[str | None]:
    """A breakdown's top ``limit`` values of ``value`` by rows, ties by code point (missing
    last): the groups shown on their own."""
    return list(
        connection.execute(
            select(value)
            .group_by(value)
            .order_by(func.count().desc(), by_codepoint(value).asc().nulls_last())
            .limit(limit)
        ).scalars()
    )


def other_group(value: ColumnElement[Any], top: list[str | None]) -> ColumnElement[Any]:
    """``value`` if in ``top``, else :data:`OTHER` (a missing value too, unless it is in
    ``top``)."""
    named = [v for v in top if v is not None]
    keep_missing = [(value.is_(None), literal(None))] if None in top else []
    return case((value.in_(named), value), *keep_missing, else_=literal(OTHER))
