"""People search: persons by one of their distinct ids or by a person property, newest first.

A distinct id matches exactly and finds its person whichever of the person's merged ids it is.
A property matches when the JSON value's text equals the given text (``pro``, ``5``, ``true``),
as property filters compare everywhere else. Pages are cut by ``offset``: a person list is
small next to the events, and a total count goes with it so a page can say how many matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.sql import ColumnElement

from ..db.tables import events, person_distinct_ids, persons
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from ..events.validation import from_micros
from ..state import current_state, resolve_scope
from .connection import report_connection
from .sql import by_codepoint, check_property_key, prop_text

MAX_LIMIT = 200
#: Deepest page: the database walks every skipped row (and SQLite cannot bind past 2**63).
MAX_OFFSET = 1_000_000
#: Distinct ids listed per person (a person merged from thousands of ids shows the first ones).
IDS_SHOWN = 20


def check_page(limit: int, offset: int) -> None:
    """A page of a persons list: ``limit`` 1..MAX_LIMIT, ``offset`` 0..MAX_OFFSET."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be between 1 and {MAX_LIMIT}")
    if not 0 <= offset <= MAX_OFFSET:
        raise ValidationError("offset", f"must be between 0 and {MAX_OFFSET}")


@dataclass(frozen=True)
class PersonListItem:
    id: int
    distinct_ids: list[str]
    properties: dict[str, Any]
    created_at: str
    is_identified: bool
    events: int
    last_seen: str | None


@dataclass(frozen=True)
class PersonSearchResult:
    persons: list[PersonListItem]
    total: int
    offset: int
    limit: int


def _conditions(
    scope: str, distinct_id: str | None, prop: str | None, value: str | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [persons.c.scope_id == scope]
    if distinct_id is not None:
        owner = select(person_distinct_ids.c.person_id).where(
            person_distinct_ids.c.scope_id == scope,
            person_distinct_ids.c.distinct_id == distinct_id,
        )
        conditions.append(persons.c.id.in_(owner.scalar_subquery()))
    if prop is not None:
        conditions.append(prop_text(persons.c.properties, prop) == value)
    return conditions


def search_persons(
    *,
    scope_id: str | None = None,
    distinct_id: str | None = None,
    property: str | None = None,
    value: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> PersonSearchResult:
    """Persons matching every criterion given (none: everybody), newest first.

    ``property`` and ``value`` go together. Each person comes with their distinct ids (the
    first :data:`IDS_SHOWN` by code point), their event count and the time of their last event.
    """
    scope = resolve_scope(scope_id)
    check_page(limit, offset)
    if distinct_id is not None and not 1 <= len(distinct_id) <= 200:
        raise ValidationError("distinct_id", "must be 1-200 characters")
    if property is not None:
        check_property_key(property, "property")
        if value is None:
            raise ValidationError("value", "is required with a property")
    elif value is not None:
        raise ValidationError("property", "is required with a value")
    conditions = _conditions(scope, distinct_id, property, value)
    if is_clickhouse():
        from ..engines.clickhouse.people import person_activity

        with current_state().engine.connect() as connection:
            rows, ids, total = _persons(connection, scope, conditions, limit, offset)
        activity: dict[int, tuple[int, int | None]] = dict(
            person_activity(scope, [row.id for row in rows])
        )
    else:
        with report_connection() as connection:
            rows, ids, total = _persons(connection, scope, conditions, limit, offset)
            activity = _sql_activity(connection, scope, [row.id for row in rows])
    found = []
    for row in rows:
        count, last_ts = activity.get(row.id, (0, None))
        found.append(
            PersonListItem(
                id=row.id,
                distinct_ids=ids.get(row.id, []),
                properties=row.properties or {},
                created_at=row.created_at.isoformat(),
                is_identified=bool(row.is_identified),
                events=int(count),
                last_seen=from_micros(last_ts).isoformat() if last_ts is not None else None,
            )
        )
    return PersonSearchResult(persons=found, total=int(total), offset=offset, limit=limit)


def _persons(
    connection: Connection,
    scope: str,
    conditions: list[ColumnElement[bool]],
    limit: int,
    offset: int,
) -> tuple[list[Any], dict[int, list[str]], int]:
    """The page of persons (SQL, whatever the event store), their first distinct ids, the total."""
    total = connection.execute(
        select(func.count()).select_from(persons).where(*conditions)
    ).scalar_one()
    rows: list[Any] = list(
        connection.execute(
            select(persons)
            .where(*conditions)
            .order_by(persons.c.created_at.desc(), persons.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    return rows, first_distinct_ids(connection, scope, [row.id for row in rows]), int(total)


def first_distinct_ids(
    connection: Connection, scope: str, person_ids: list[int]
) -> dict[int, list[str]]:
    """``{person id: their first IDS_SHOWN distinct ids by code point}`` (SQL, any store)."""
    numbered = select(
        person_distinct_ids.c.person_id,
        person_distinct_ids.c.distinct_id,
        func.row_number()
        .over(
            partition_by=person_distinct_ids.c.person_id,
            order_by=by_codepoint(person_distinct_ids.c.distinct_id),
        )
        .label("n"),
    ).where(
        person_distinct_ids.c.scope_id == scope,
        person_distinct_ids.c.person_id.in_(person_ids),
    )
    ranked = numbered.subquery("ranked")
    ids: dict[int, list[str]] = {}
    for person_id, known_id in connection.execute(
        select(ranked.c.person_id, ranked.c.distinct_id)
        .where(ranked.c.n <= IDS_SHOWN)
        .order_by(ranked.c.person_id, ranked.c.n)
    ):
        ids.setdefault(person_id, []).append(known_id)
    return ids


def _sql_activity(
    connection: Connection, scope: str, person_ids: list[int]
) -> dict[int, tuple[int, int | None]]:
    """The SQL engine's ``{person id: (events, last event µs)}``."""
    return {
        row.person_id: (row.events, row.last_ts)
        for row in connection.execute(
            select(
                person_distinct_ids.c.person_id,
                func.count(events.c.id).label("events"),
                func.max(events.c.ts).label("last_ts"),
            )
            .select_from(events)
            .join(
                person_distinct_ids,
                (person_distinct_ids.c.scope_id == events.c.scope_id)
                & (person_distinct_ids.c.distinct_id == events.c.distinct_id),
            )
            .where(events.c.scope_id == scope, person_distinct_ids.c.person_id.in_(person_ids))
            .group_by(person_distinct_ids.c.person_id)
        )
    }
