"""Annotations: a dated note per scope ("v2.3 released") that every time-series chart of the
dashboard marks on its time axis, so a reader sees why a line moved (docs/annotations.md).

Created, changed and deleted through this module only, each change audited like insights'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from .audit import current_actor, record_audit
from .db.tables import annotations_table as table
from .db.types import utcnow
from .errors import ValidationError
from .state import current_state, resolve_scope
from .validation import as_utc

#: The longest note: a label on a chart, not a document.
MAX_TEXT = 400
#: At most this many annotations are answered by one listing (the earliest first).
MAX_LIST = 1000
#: Ids are 64-bit: a larger one matches nothing (and never reaches the database).
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Annotation:
    """A note at ``occurs_at`` (UTC) in a scope."""

    id: int
    scope_id: str
    occurs_at: datetime
    text: str
    created_by: str
    created_at: datetime
    updated_at: datetime


def _to_annotation(row: Any) -> Annotation:
    return Annotation(
        int(row.id),
        row.scope_id,
        as_utc(row.occurs_at, "occurs_at"),
        row.text,
        row.created_by,
        row.created_at,
        row.updated_at,
    )


def check_text(value: Any) -> str:
    """The note, trimmed: not blank, at most :data:`MAX_TEXT` characters, one line."""
    if not isinstance(value, str):
        raise ValidationError("text", f"must be a string, got {type(value).__name__}")
    text = value.strip()
    if not text or len(text) > MAX_TEXT:
        raise ValidationError("text", f"must be 1-{MAX_TEXT} characters (not blank)")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValidationError("text", "must be one line without control characters")
    return text


def check_occurs_at(value: Any) -> datetime:
    """The moment in UTC (naive datetimes are taken to be UTC)."""
    return as_utc(value, "occurs_at")


def _row(connection: Connection, scope_id: str, annotation_id: int) -> Any:
    if isinstance(annotation_id, bool) or not isinstance(annotation_id, int):
        raise ValidationError("id", "must be an integer")
    if not 1 <= annotation_id <= MAX_ID:
        return None
    return connection.execute(
        select(table).where(table.c.scope_id == scope_id, table.c.id == annotation_id)
    ).first()


def _audit(annotation: Annotation) -> dict[str, Any]:
    return {"occurs_at": annotation.occurs_at.isoformat(), "text": annotation.text}


def insert_annotation(
    connection: Connection, scope_id: str, *, occurs_at: datetime, text: str, actor: str
) -> Annotation:
    """Insert an already-checked annotation (and its audit row) on ``connection``."""
    now = utcnow()
    new_id = connection.execute(
        insert(table)
        .values(
            scope_id=scope_id,
            occurs_at=occurs_at,
            text=text,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        .returning(table.c.id)
    ).scalar_one()
    annotation = _to_annotation(_row(connection, scope_id, int(new_id)))
    record_audit(
        connection,
        scope_id=scope_id,
        action="annotation.create",
        target=str(new_id),
        after=_audit(annotation),
        actor=actor,
    )
    return annotation


def create_annotation(
    occurs_at: datetime, text: str, *, scope_id: str | None = None, actor: str | None = None
) -> Annotation:
    """Note ``text`` at ``occurs_at`` in the scope."""
    scope = resolve_scope(scope_id)
    when, checked = check_occurs_at(occurs_at), check_text(text)
    with current_state().engine.begin() as connection:
        return insert_annotation(
            connection, scope, occurs_at=when, text=checked, actor=actor or current_actor()
        )


def get_annotation(annotation_id: int, *, scope_id: str | None = None) -> Annotation | None:
    scope = resolve_scope(scope_id)
    with current_state().engine.connect() as connection:
        row = _row(connection, scope, annotation_id)
    return None if row is None else _to_annotation(row)


def list_annotations(
    *,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    scope_id: str | None = None,
    limit: int = MAX_LIST,
) -> list[Annotation]:
    """The scope's annotations with ``date_from <= occurs_at < date_to`` (either bound may be
    left out), earliest first, at most ``limit`` of them."""
    scope = resolve_scope(scope_id)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise ValidationError("limit", f"must be an integer from 1 to {MAX_LIST}")
    query = select(table).where(table.c.scope_id == scope)
    start = None if date_from is None else as_utc(date_from, "date_from")
    end = None if date_to is None else as_utc(date_to, "date_to")
    if start is not None and end is not None and start >= end:
        raise ValidationError("date_from", "must be before date_to")
    if start is not None:
        query = query.where(table.c.occurs_at >= start)
    if end is not None:
        query = query.where(table.c.occurs_at < end)
    query = query.order_by(table.c.occurs_at, table.c.id).limit(limit)
    with current_state().engine.connect() as connection:
        return [_to_annotation(row) for row in connection.execute(query)]


def update_annotation(
    annotation_id: int,
    *,
    occurs_at: datetime | None = None,
    text: str | None = None,
    scope_id: str | None = None,
    actor: str | None = None,
) -> Annotation | None:
    """Change the moment and/or the text; None when there is no such annotation in the scope."""
    scope = resolve_scope(scope_id)
    if occurs_at is None and text is None:
        raise ValidationError("text", "give occurs_at or text (or both) to change")
    values: dict[str, Any] = {}
    if occurs_at is not None:
        values["occurs_at"] = check_occurs_at(occurs_at)
    if text is not None:
        values["text"] = check_text(text)
    with current_state().engine.begin() as connection:
        row = _row(connection, scope, annotation_id)
        if row is None:
            return None
        before = _to_annotation(row)
        values["updated_at"] = utcnow()
        connection.execute(update(table).where(table.c.id == row.id).values(**values))
        after = _to_annotation(_row(connection, scope, annotation_id))
        record_audit(
            connection,
            scope_id=scope,
            action="annotation.update",
            target=str(annotation_id),
            before=_audit(before),
            after=_audit(after),
            actor=actor,
        )
        return after


def delete_annotation(
    annotation_id: int, *, scope_id: str | None = None, actor: str | None = None
) -> bool:
    """Delete the annotation; False when there is none of that id in the scope."""
    scope = resolve_scope(scope_id)
    with current_state().engine.begin() as connection:
        row = _row(connection, scope, annotation_id)
        if row is None:
            return False
        connection.execute(delete(table).where(table.c.id == row.id))
        record_audit(
            connection,
            scope_id=scope,
            action="annotation.delete",
            target=str(annotation_id),
            before=_audit(_to_annotation(row)),
            actor=actor,
        )
    return True


__all__ = [
    "MAX_TEXT",
    "Annotation",
    "create_annotation",
    "delete_annotation",
    "get_annotation",
    "list_annotations",
    "update_annotation",
]
