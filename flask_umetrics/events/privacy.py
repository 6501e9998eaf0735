"""GDPR for one person of a scope: delete everything, anonymise in place, or export everything.

A person is reached through any of their distinct ids; every operation covers all distinct ids
merged into that person. Delete and anonymise run in one transaction each and leave an audit
row whose target is ``person:<id>`` with counts only, so the audit log never keeps the personal
data that was just removed.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update

from ..audit import record_audit
from ..db.tables import (
    assignments,
    events,
    exposures,
    person_distinct_ids,
    persons,
    segment_members,
    segments,
)
from ..engines.sql.store import ANONYMIZED_UUID_PREFIX  # noqa: F401 - its documented home
from ..state import current_state, resolve_scope
from .export import event_record
from .tracking import flush

#: Event property keys removed by :func:`anonymize_person` (documented in docs/privacy-export.md).
PII_KEYS: tuple[str, ...] = (
    "$ip",
    "ip",
    "email",
    "$email",
    "name",
    "first_name",
    "last_name",
    "phone",
    "$user_agent",
    "user_agent",
    "address",
)
_CHUNK = 500


@dataclass(frozen=True)
class DeletionReport:
    """What :func:`delete_person` removed; ``found=False`` (all zero) for an unknown id."""

    found: bool
    person_id: int | None
    persons: int
    distinct_ids: int
    events: int
    assignments: int = 0
    exposures: int = 0


@dataclass(frozen=True)
class AnonymizationReport:
    """What :func:`anonymize_person` rewrote; ``found=False`` (all zero) for an unknown id."""

    found: bool
    person_id: int | None
    distinct_ids: int
    events: int


#: Flag tables keyed by subject id (a distinct id, or an anonymous cookie id).
_SUBJECT_TABLES = (assignments, exposures)


def _delete_flag_rows(connection: Connection, scope_id: str, ids: list[str]) -> tuple[int, int]:
    removed = []
    for table in _SUBJECT_TABLES:
        count = 0
        for chunk in _chunks(ids):
            count += connection.execute(
                delete(table).where(table.c.scope_id == scope_id, table.c.subject_id.in_(chunk))
            ).rowcount
        removed.append(count)
    return removed[0], removed[1]


def _rename_flag_rows(connection: Connection, scope_id: str, old: str, new: str) -> int:
    rewritten = 0
    for table in _SUBJECT_TABLES:
        rewritten += connection.execute(
            update(table)
            .where(table.c.scope_id == scope_id, table.c.subject_id == old)
            .values(subject_id=new)
        ).rowcount
    return rewritten


def _flag_rows(connection: Connection, table: Any, scope_id: str, ids: list[str]) -> list[Any]:
    rows: list[Any] = []
    for chunk in _chunks(ids):
        rows += connection.execute(
            select(table).where(table.c.scope_id == scope_id, table.c.subject_id.in_(chunk))
        ).all()
    return rows


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _person_of(connection: Connection, scope_id: str, distinct_id: str) -> int | None:
    found = connection.execute(
        select(person_distinct_ids.c.person_id).where(
            person_distinct_ids.c.scope_id == scope_id,
            person_distinct_ids.c.distinct_id == distinct_id,
        )
    ).scalar_one_or_none()
    return None if found is None else int(found)


def _distinct_ids(connection: Connection, scope_id: str, person_id: int) -> list[str]:
    return list(
        connection.execute(
            select(person_distinct_ids.c.distinct_id)
            .where(
                person_distinct_ids.c.scope_id == scope_id,
                person_distinct_ids.c.person_id == person_id,
            )
            .order_by(person_distinct_ids.c.distinct_id)
        ).scalars()
    )


def _lock_person(connection: Connection, person_id: int) -> None:
    """Serialise against a concurrent merge or property update of the same person."""
    connection.execute(select(persons.c.id).where(persons.c.id == person_id).with_for_update())


def delete_person(distinct_id: str, *, scope_id: str | None = None) -> DeletionReport:
    """Delete the person of ``distinct_id``, all their distinct ids and all their events.

    Buffered events are flushed first so none of the person's events is written afterwards.
    """
    scope = resolve_scope(scope_id)
    flush()
    store = current_state().event_store
    with current_state().engine.begin() as connection:
        person_id = _person_of(connection, scope, distinct_id)
        if person_id is None:
            # A subject may hold flag assignments without ever having sent an event.
            flag_counts = _delete_flag_rows(connection, scope, [distinct_id])
            if not any(flag_counts):
                return DeletionReport(False, None, 0, 0, 0)
            record_audit(
                connection,
                scope_id=scope,
                action="person.delete",
                target="subject",
                before={"assignments": flag_counts[0], "exposures": flag_counts[1]},
            )
            return DeletionReport(True, None, 0, 0, 0, *flag_counts)
        _lock_person(connection, person_id)
        ids = _distinct_ids(connection, scope, person_id)
        flag_counts = _delete_flag_rows(connection, scope, ids)
        removed_events = store.delete_person_events(connection, scope, ids)
        for chunk in _chunks(ids):  # static segments list distinct ids too
            connection.execute(
                delete(segment_members).where(
                    segment_members.c.distinct_id.in_(chunk),
                    segment_members.c.segment_id.in_(
                        select(segments.c.id).where(segments.c.scope_id == scope)
                    ),
                )
            )
        removed_ids = connection.execute(
            delete(person_distinct_ids).where(
                person_distinct_ids.c.scope_id == scope,
                person_distinct_ids.c.person_id == person_id,
            )
        ).rowcount
        removed_persons = connection.execute(
            delete(persons).where(persons.c.id == person_id)
        ).rowcount
        store.mirror_persons(connection, scope, [person_id], gone_distinct_ids=ids, forget=True)
        counts = {
            "distinct_ids": removed_ids,
            "events": removed_events,
            "assignments": flag_counts[0],
            "exposures": flag_counts[1],
        }
        record_audit(
            connection,
            scope_id=scope,
            action="person.delete",
            target=f"person:{person_id}",
            before=counts,
        )
    return DeletionReport(
        True, person_id, removed_persons, removed_ids, removed_events, *flag_counts
    )


def anonymous_id(salt: bytes, distinct_id: str) -> str:
    """``anon-`` and 16 hex digits: stable within one anonymisation, unlinkable without salt."""
    return "anon-" + hashlib.sha256(salt + distinct_id.encode("utf-8")).hexdigest()[:16]


def anonymize_person(distinct_id: str, *, scope_id: str | None = None) -> AnonymizationReport:
    """Keep the person's events for aggregate reports but remove who they are.

    Every distinct id becomes ``anon-<16 hex>`` (sha256 of a random salt, used once and never
    stored, and the id) in events and the id map, each event's uuid becomes
    ``anon-event-<row id>`` (client uuids may embed an id), the person's properties are cleared,
    and the :data:`PII_KEYS` are removed from their events' properties.
    """
    scope = resolve_scope(scope_id)
    flush()
    salt = secrets.token_bytes(32)
    store = current_state().event_store
    with current_state().engine.begin() as connection:
        person_id = _person_of(connection, scope, distinct_id)
        if person_id is None:
            renamed = _rename_flag_rows(
                connection, scope, distinct_id, anonymous_id(salt, distinct_id)
            )
            if not renamed:
                return AnonymizationReport(False, None, 0, 0)
            record_audit(
                connection,
                scope_id=scope,
                action="person.anonymize",
                target="subject",
                after={"flag_rows": renamed},
            )
            return AnonymizationReport(True, None, 1, 0)
        _lock_person(connection, person_id)
        ids = _distinct_ids(connection, scope, person_id)
        renames = {old: anonymous_id(salt, old) for old in ids}
        rewritten = store.anonymize_person_events(connection, scope, renames, PII_KEYS)
        for old, new in renames.items():
            _rename_flag_rows(connection, scope, old, new)
            connection.execute(
                update(person_distinct_ids)
                .where(
                    person_distinct_ids.c.scope_id == scope,
                    person_distinct_ids.c.distinct_id == old,
                )
                .values(distinct_id=new)
            )
            connection.execute(  # static segment memberships follow the person, not the name
                update(segment_members)
                .where(
                    segment_members.c.distinct_id == old,
                    segment_members.c.segment_id.in_(
                        select(segments.c.id).where(segments.c.scope_id == scope)
                    ),
                )
                .values(distinct_id=new)
            )
        connection.execute(update(persons).where(persons.c.id == person_id).values(properties={}))
        store.mirror_persons(connection, scope, [person_id], gone_distinct_ids=ids, forget=True)
        record_audit(
            connection,
            scope_id=scope,
            action="person.anonymize",
            target=f"person:{person_id}",
            after={"distinct_ids": len(ids), "events": rewritten},
        )
    return AnonymizationReport(True, person_id, len(ids), rewritten)


def export_person(distinct_id: str, *, scope_id: str | None = None) -> dict[str, Any] | None:
    """Everything stored about the person of ``distinct_id`` (events newest first), or None."""
    scope = resolve_scope(scope_id)
    flush()
    store = current_state().event_store
    with current_state().engine.connect() as connection:
        person_id = _person_of(connection, scope, distinct_id)
        if person_id is None:
            return None
        person = connection.execute(select(persons).where(persons.c.id == person_id)).one()
        ids = _distinct_ids(connection, scope, person_id)
        rows: list[Any] = []
        if store.name == "clickhouse":
            from ..engines.clickhouse.reads import person_events
            from ..engines.clickhouse.store import ClickHouseEventStore

            assert isinstance(store, ClickHouseEventStore)
            rows = list(person_events(store.client, scope, ids))
        else:
            for chunk in _chunks(ids):
                rows += connection.execute(
                    select(events).where(
                        events.c.scope_id == scope, events.c.distinct_id.in_(chunk)
                    )
                ).all()
        assigned = _flag_rows(connection, assignments, scope, ids)
        exposed = _flag_rows(connection, exposures, scope, ids)
    rows.sort(key=lambda row: (row.ts, row.id), reverse=True)
    return {
        "scope_id": scope,
        "person": {
            "id": person.id,
            "properties": person.properties or {},
            "created_at": person.created_at.isoformat().replace("+00:00", "Z"),
            "is_identified": bool(person.is_identified),
        },
        "distinct_ids": ids,
        "events": [event_record(row) for row in rows],
        "assignments": [
            {
                "subject_id": a.subject_id,
                "experiment": a.experiment_key,
                "bucket_version": a.bucket_version,
                "variant": a.variant,
                "assigned_at": a.assigned_at.isoformat().replace("+00:00", "Z"),
            }
            for a in sorted(assigned, key=lambda a: (a.experiment_key, a.bucket_version))
        ],
        "exposures": [
            {
                "subject_id": e.subject_id,
                "experiment": e.experiment_key,
                "bucket_version": e.bucket_version,
                "variant": e.variant,
                "timestamp_us": e.ts,
            }
            for e in sorted(exposed, key=lambda e: (e.experiment_key, e.bucket_version))
        ],
    }
