"""Events in the umetrics SQL database: insert-or-skip by ``(scope_id, uuid)``, delete and
anonymise in the caller's transaction. The one place the event writes name a dialect."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import ARRAY, Connection, String, Text, case, cast, delete, func, literal, text
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import ColumnElement

from ...db.tables import events
from ...db.upsert import insert_ignoring_conflicts
from .. import NewPerson

#: Anonymised events get the uuid ``anon-event-<row id>``: a client uuid may embed an id.
ANONYMIZED_UUID_PREFIX = "anon-event-"
_CHUNK = 500

#: One statement text whatever the batch size: PostgreSQL parses and plans it once per
#: connection, instead of a new multi-row VALUES text (hundreds of placeholders) per batch.
_UNNEST_INSERT = text(
    "INSERT INTO umetrics_events "
    "(scope_id, uuid, event, distinct_id, ts, session_id, active, properties) "
    "SELECT s, u, e, d, t, si, a, CAST(p AS JSONB) FROM unnest("
    "CAST(:scope AS TEXT[]), CAST(:uuid AS TEXT[]), CAST(:event AS TEXT[]), "
    "CAST(:distinct_id AS TEXT[]), CAST(:ts AS BIGINT[]), CAST(:session_id AS TEXT[]), "
    "CAST(:active AS BOOLEAN[]), CAST(:properties AS TEXT[])) AS r(s, u, e, d, t, si, a, p) "
    "ON CONFLICT (scope_id, uuid) DO NOTHING RETURNING 1"
)


class SqlEventStore:
    """Events in ``umetrics_events``, next to persons: one transaction covers both, and the
    unique ``(scope_id, uuid)`` makes every duplicate count exact."""

    name = "sql"

    def insert_events(
        self,
        connection: Connection,
        rows: Sequence[Mapping[str, Any]],
        new_persons: Mapping[str, Mapping[str, NewPerson]],
        persons: Mapping[str, Mapping[str, int]],
    ) -> int:
        # SQL joins events to persons through person_distinct_ids at read time: no person id
        # is stored on the event, so a merge needs no rewrite.
        if connection.dialect.name == "postgresql":
            return _insert_postgresql(connection, rows)
        inserted = connection.execute(
            insert_ignoring_conflicts(connection, events, "scope_id", "uuid").returning(
                events.c.id
            ),
            [dict(row) for row in rows],
        )
        return len(inserted.all())

    def delete_person_events(
        self, connection: Connection, scope_id: str, distinct_ids: Sequence[str]
    ) -> int:
        removed = 0
        for start in range(0, len(distinct_ids), _CHUNK):
            chunk = list(distinct_ids[start : start + _CHUNK])
            removed += connection.execute(
                delete(events).where(events.c.scope_id == scope_id, events.c.distinct_id.in_(chunk))
            ).rowcount
        return removed

    def anonymize_person_events(
        self,
        connection: Connection,
        scope_id: str,
        renames: Mapping[str, str],
        pii_keys: Collection[str],
    ) -> int:
        rewritten = 0
        for old, new in renames.items():
            rewritten += connection.execute(
                sql_update(events)
                .where(events.c.scope_id == scope_id, events.c.distinct_id == old)
                .values(
                    distinct_id=new,
                    uuid=literal(ANONYMIZED_UUID_PREFIX, String) + cast(events.c.id, String),
                    properties=_without_keys(connection, tuple(pii_keys)),
                )
            ).rowcount
        return rewritten

    def mirror_persons(
        self,
        connection: Connection,
        scope_id: str,
        person_ids: Collection[int],
        gone_distinct_ids: Collection[str] = (),
        *,
        forget: bool = False,
    ) -> None:
        """Nothing to do: reports join the SQL person tables themselves."""


def _without_keys(connection: Connection, keys: tuple[str, ...]) -> ColumnElement[Any]:
    """The event's properties minus ``keys``, computed row by row in SQL."""
    if connection.dialect.name == "postgresql":
        array = cast(postgresql.array(keys), ARRAY(Text))
        removed = events.c.properties.op("-", return_type=events.c.properties.type)(array)
        is_object = func.jsonb_typeof(events.c.properties) == "object"
        return case((is_object, removed), else_=events.c.properties)
    paths = ['$."' + key.replace('"', '\\"') + '"' for key in keys]
    return func.json_remove(events.c.properties, *paths)


def _insert_postgresql(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    columns: dict[str, list[Any]] = {
        "scope": [],
        "uuid": [],
        "event": [],
        "distinct_id": [],
        "ts": [],
        "session_id": [],
        "active": [],
        "properties": [],
    }
    for row in rows:
        columns["scope"].append(row["scope_id"])
        columns["uuid"].append(row["uuid"])
        columns["event"].append(row["event"])
        columns["distinct_id"].append(row["distinct_id"])
        columns["ts"].append(row["ts"])
        columns["session_id"].append(row["session_id"])
        columns["active"].append(row["active"])
        columns["properties"].append(json.dumps(row["properties"], separators=(",", ":")))
    return len(connection.execute(_UNNEST_INSERT, columns).all())
