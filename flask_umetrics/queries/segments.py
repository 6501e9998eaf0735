"""Saved segments: a named set of persons that any report can be limited to.

A ``dynamic`` segment is a list of filters on person properties, evaluated when a report runs (so
it follows the data); a ``static`` segment is a list of distinct ids, resolved to their persons
when a report runs (so a later merge brings the merged person along).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, null, select, update
from sqlalchemy.sql import ColumnElement

from ..audit import record_audit
from ..db.tables import person_distinct_ids, persons, segment_members, segments
from ..db.types import utcnow
from ..errors import ValidationError
from ..events.validation import MAX_ID_LENGTH
from ..state import current_state, resolve_scope
from .filters import PropertyFilter
from .persons import PersonSource

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
MAX_STATIC_MEMBERS = 100_000


@dataclass(frozen=True)
class Segment:
    """A saved segment as stored (static members are not loaded)."""

    id: int
    scope_id: str
    key: str
    name: str
    kind: str
    filters: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime

    def condition(self, person_id: ColumnElement[Any]) -> ColumnElement[bool]:
        """SQL: ``person_id`` belongs to this segment."""
        if self.kind == "dynamic":
            rules = [
                PropertyFilter.model_validate(f).condition(persons.c.properties)
                for f in self.filters
            ]
            members = select(persons.c.id).where(persons.c.scope_id == self.scope_id, *rules)
            return person_id.in_(members)
        members = (
            select(person_distinct_ids.c.person_id)
            .join(
                segment_members,
                and_(
                    segment_members.c.distinct_id == person_distinct_ids.c.distinct_id,
                    segment_members.c.segment_id == self.id,
                ),
            )
            .where(person_distinct_ids.c.scope_id == self.scope_id)
        )
        return person_id.in_(members)


def _check(
    key: str, name: str, filters: Sequence[Any] | None, distinct_ids: Sequence[str] | None
) -> tuple[str, list[dict[str, Any]], list[str]]:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise ValidationError("key", "must be 1-100 letters, digits, '_', '.', ':' or '-'")
    if not isinstance(name, str) or len(name) > 200:
        raise ValidationError("name", "must be a string of at most 200 characters")
    if (filters is None) == (distinct_ids is None):
        raise ValidationError("filters", "give either filters (dynamic) or distinct_ids (static)")
    if filters is not None:
        try:
            parsed = [PropertyFilter.model_validate(f).model_dump() for f in filters]
        except ValueError as exc:
            raise ValidationError("filters", str(exc)) from exc
        return "dynamic", parsed, []
    ids = list(dict.fromkeys(distinct_ids or []))
    if len(ids) > MAX_STATIC_MEMBERS:
        raise ValidationError("distinct_ids", f"at most {MAX_STATIC_MEMBERS} ids")
    for item in ids:
        if not isinstance(item, str) or not item or len(item) > MAX_ID_LENGTH:
            raise ValidationError("distinct_ids", f"every id must be 1-{MAX_ID_LENGTH} characters")
    return "static", [], ids


def _row(connection: Connection, scope_id: str, key: str) -> Any:
    return connection.execute(
        select(segments).where(segments.c.scope_id == scope_id, segments.c.key == key)
    ).first()


def _to_segment(row: Any) -> Segment:
    return Segment(
        row.id,
        row.scope_id,
        row.key,
        row.name,
        row.kind,
        list(row.filters or []),
        row.created_at,
        row.updated_at,
    )


def save_segment(
    key: str,
    *,
    name: str = "",
    filters: Sequence[Any] | None = None,
    distinct_ids: Sequence[str] | None = None,
    scope_id: str | None = None,
    actor: str | None = None,
) -> Segment:
    """Create or replace the segment ``key``: dynamic with ``filters`` (on person properties),
    or static with ``distinct_ids``."""
    scope = resolve_scope(scope_id)
    kind, rules, ids = _check(key, name, filters, distinct_ids)
    now = utcnow()
    with current_state().engine.begin() as connection:
        existing = _row(connection, scope, key)
        values = {"name": name or key, "kind": kind, "filters": rules, "updated_at": now}
        if existing is None:
            segment_id = connection.execute(
                insert(segments)
                .values(scope_id=scope, key=key, created_at=now, **values)
                .returning(segments.c.id)
            ).scalar_one()
        else:
            segment_id = existing.id
            connection.execute(update(segments).where(segments.c.id == segment_id).values(**values))
            connection.execute(
                delete(segment_members).where(segment_members.c.segment_id == segment_id)
            )
        if ids:
            connection.execute(
                insert(segment_members),
                [{"segment_id": segment_id, "distinct_id": d} for d in ids],
            )
        record_audit(
            connection,
            scope_id=scope,
            action="segment.save",
            target=key,
            before=None
            if existing is None
            else {"kind": existing.kind, "filters": existing.filters},
            after={"kind": kind, "filters": rules, "members": len(ids)},
            actor=actor,
        )
        return _to_segment(_row(connection, scope, key))


def get_segment(key: str, *, scope_id: str | None = None) -> Segment | None:
    scope = resolve_scope(scope_id)
    with current_state().engine.connect() as connection:
        return get_segment_on(connection, scope, key)


def get_segment_on(connection: Connection, scope_id: str, key: str) -> Segment | None:
    """A segment read on the caller's connection (flag targeting checks membership with it)."""
    row = _row(connection, scope_id, key)
    return None if row is None else _to_segment(row)


def list_segments(*, scope_id: str | None = None) -> list[Segment]:
    scope = resolve_scope(scope_id)
    query = select(segments).where(segments.c.scope_id == scope).order_by(segments.c.key)
    with current_state().engine.connect() as connection:
        return [_to_segment(row) for row in connection.execute(query)]


def delete_segment(key: str, *, scope_id: str | None = None, actor: str | None = None) -> bool:
    scope = resolve_scope(scope_id)
    with current_state().engine.begin() as connection:
        row = _row(connection, scope, key)
        if row is None:
            return False
        connection.execute(delete(segment_members).where(segment_members.c.segment_id == row.id))
        connection.execute(delete(segments).where(segments.c.id == row.id))
        record_audit(
            connection,
            scope_id=scope,
            action="segment.delete",
            target=key,
            before={"kind": row.kind},
            actor=actor,
        )
    return True


def count_segment_persons(segment: Segment) -> int:
    """How many persons the segment holds now."""
    query = (
        select(func.count())
        .select_from(persons)
        .where(persons.c.scope_id == segment.scope_id, segment.condition(persons.c.id))
    )
    with current_state().engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def segment_persons(segment: Segment) -> PersonSource:
    """The segment's persons for a paged list: the rows :func:`count_segment_persons` counts,
    read from the SQL database on every event store (membership is person data). ``at`` is
    NULL: belonging to a segment has no moment."""
    return PersonSource.metadata_sql(
        select(persons.c.id.label("person_id"), null().label("at")).where(
            persons.c.scope_id == segment.scope_id, segment.condition(persons.c.id)
        )
    )
