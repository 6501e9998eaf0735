"""Timeline: one person's events (every distinct id merged into them), newest first.

Pages are cut with a keyset cursor on ``(ts, id)`` rather than an offset, so events sharing a
timestamp are neither lost nor repeated across pages, and new events never shift later pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from ..db.tables import events, person_distinct_ids, persons
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import APIError, ValidationError
from ..events.validation import from_micros
from ..state import current_state, resolve_scope
from .connection import report_connection
from .sessions import PersonSession, sessions_of_person
from .sql import by_codepoint, person_events

MAX_LIMIT = 1000
SESSIONS_SHOWN = 20


@dataclass(frozen=True)
class TimelinePerson:
    id: int
    distinct_ids: list[str]
    properties: dict[str, Any]
    created_at: str


@dataclass(frozen=True)
class TimelineEvent:
    uuid: str | None
    event: str
    distinct_id: str
    timestamp: str
    session_id: str | None
    properties: dict[str, Any]
    active: bool


@dataclass(frozen=True)
class Timeline:
    person: TimelinePerson
    events: list[TimelineEvent]
    next: str | None
    sessions: list[PersonSession]


def encode_cursor(ts: int, event_id: int) -> str:
    """An opaque page cursor: the ``(ts, id)`` of the last event shown."""
    return base64.urlsafe_b64encode(f"{ts}.{event_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, event_id = text.split(".")
        return int(ts), int(event_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationError("before", "is not a cursor from a previous page") from exc


@dataclass(frozen=True)
class _Row:
    uuid: str | None
    event: str
    distinct_id: str
    ts: int
    session_id: str | None
    properties: dict[str, Any]
    active: bool
    id: int


def _person(connection: Connection, scope: str, distinct_id: str) -> tuple[int, Any, list[str]]:
    """The person owning ``distinct_id`` (404 if none), its row and its distinct ids (SQL)."""
    person_id = connection.execute(
        select(person_distinct_ids.c.person_id).where(
            person_distinct_ids.c.scope_id == scope,
            person_distinct_ids.c.distinct_id == distinct_id,
        )
    ).scalar_one_or_none()
    if person_id is None:
        raise APIError(404, "not_found", f"No person has the distinct id {distinct_id!r}.")
    person = connection.execute(select(persons).where(persons.c.id == person_id)).one()
    ids = connection.execute(
        select(person_distinct_ids.c.distinct_id)
        .where(
            person_distinct_ids.c.scope_id == scope,
            person_distinct_ids.c.person_id == person_id,
        )
        .order_by(by_codepoint(person_distinct_ids.c.distinct_id))
    ).scalars()
    return int(person_id), person, list(ids)


def _sql_page(
    connection: Connection,
    scope: str,
    person_id: int,
    cursor: tuple[int, int] | None,
    limit: int,
) -> list[Any]:
    """The SQL engine's newest ``limit`` events of the person before ``cursor``."""
    query = person_events(scope).add_columns(events.c.uuid)
    query = query.where(person_distinct_ids.c.person_id == person_id)
    if cursor is not None:
        ts, event_id = cursor
        query = query.where(or_(events.c.ts < ts, and_(events.c.ts == ts, events.c.id < event_id)))
    query = query.order_by(events.c.ts.desc(), events.c.id.desc()).limit(limit)
    return list(connection.execute(query))


def timeline(
    distinct_id: str, *, scope_id: str | None = None, limit: int = 50, before: str | None = None
) -> Timeline:
    """The person owning ``distinct_id``; ``before`` is the ``next`` of the previous page.

    ``sessions`` are the person's latest sessions that started by the page's cursor (all
    time, see :func:`sessions_of_person`). Raises a 404 ``APIError`` for an unknown id.
    """
    scope = resolve_scope(scope_id)
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be between 1 and {MAX_LIMIT}")
    cursor = decode_cursor(before) if before is not None else None
    if is_clickhouse():
        with current_state().engine.connect() as connection:
            person_id, person, distinct_ids = _person(connection, scope, distinct_id)
        from ..engines.clickhouse.timeline import person_page

        rows = [
            _Row(uuid, event, did, ts, session, json.loads(props or "{}"), bool(active), seq)
            for uuid, event, did, ts, session, props, active, seq in person_page(
                scope, person_id, cursor, limit + 1
            )
        ]
    else:
        with report_connection() as connection:
            person_id, person, distinct_ids = _person(connection, scope, distinct_id)
            rows = _sql_page(connection, scope, person_id, cursor, limit + 1)
    page, more = rows[:limit], len(rows) > limit
    shown = [
        TimelineEvent(
            uuid=row.uuid,
            event=row.event,
            distinct_id=row.distinct_id,
            timestamp=from_micros(row.ts).isoformat(),
            session_id=row.session_id,
            properties=row.properties or {},
            active=row.active,
        )
        for row in page
    ]
    return Timeline(
        person=TimelinePerson(
            id=person.id,
            distinct_ids=distinct_ids,
            properties=person.properties or {},
            created_at=person.created_at.isoformat(),
        ),
        events=shown,
        next=encode_cursor(page[-1].ts, page[-1].id) if more else None,
        sessions=sessions_of_person(
            scope, person_id, SESSIONS_SHOWN, started_by_us=cursor[0] if cursor else None
        ),
    )
