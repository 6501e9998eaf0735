"""Copying persons and the distinct-id map from SQL into ClickHouse as versioned rows.

SQL stays the source of truth. Each change (a new person, identify, merge, properties, delete,
anonymise) is mirrored by reading the *current* SQL state of the persons it touched, inside the
transaction that changed them, and inserting it with a newer version: ``ReplacingMergeTree``
keeps the highest version per key, and reads take ``argMax(..., version)``. Because the state
is copied rather than the change, mirroring the same person again is always safe, and a later
mirror repairs an earlier one that was lost. No event is rewritten by a merge: the distinct
ids of a merged person are also written to the overrides table, which reports honour until
``overrides.squash`` rewrites the events (see ``schema._events_person_id``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from ...db.tables import person_distinct_ids, persons
from ...events.validation import to_micros
from .. import NewPerson
from .client import insert
from .schema import DISTINCT_IDS, OVERRIDES, PERSONS
from .sequence import next_value

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

PERSON_COLUMNS = [
    "scope_id",
    "id",
    "properties",
    "is_identified",
    "created_at",
    "is_deleted",
    "version",
]
MAP_COLUMNS = ["scope_id", "distinct_id", "person_id", "is_deleted", "version"]
_CHUNK = 500


def _json(value: Any) -> str:
    return json.dumps(value if value is not None else {}, separators=(",", ":"), sort_keys=True)


def mirror_new_persons(
    client: Client,
    batches: Sequence[Mapping[str, Mapping[str, NewPerson]]],
    settings: dict[str, Any],
) -> None:
    """The persons event batches created (by scope, by distinct id): empty, anonymous, one
    distinct id each; one insert per table for all the batches."""
    version = next_value()
    person_rows: list[list[Any]] = []
    map_rows: list[list[Any]] = []
    for scope_id, created in (item for batch in batches for item in batch.items()):
        for distinct_id, person in created.items():
            person_rows.append(
                [scope_id, person.person_id, "{}", False, to_micros(person.created_at), 0, version]
            )
            map_rows.append([scope_id, distinct_id, person.person_id, 0, version])
    if person_rows:
        insert(client, PERSONS, person_rows, PERSON_COLUMNS, settings)
        insert(client, DISTINCT_IDS, map_rows, MAP_COLUMNS, settings)


def mirror_persons(
    client: Client,
    connection: Connection,
    scope_id: str,
    person_ids: Collection[int],
    gone_distinct_ids: Collection[str],
    settings: dict[str, Any],
    *,
    forget: bool = False,
) -> int:
    """Insert the SQL state of ``person_ids`` as a new version: a person missing from SQL (merged
    away, deleted) becomes ``is_deleted``; every distinct id still mapped to one of them points
    at it; a distinct id of ``gone_distinct_ids`` mapped nowhere any more becomes ``is_deleted``.
    When a person is missing and not being forgotten (a merge), the map rows go to the
    overrides too: their events were stored with the merged-away person's id.
    Returns the version written (0 when there was nothing to write)."""
    wanted = sorted(set(person_ids))
    if not wanted and not gone_distinct_ids:
        return 0
    found: dict[int, Any] = {}
    mapped: dict[str, int] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        found.update(
            (row.id, row)
            for row in connection.execute(select(persons).where(persons.c.id.in_(chunk)))
        )
        mapped.update(
            (row.distinct_id, row.person_id)
            for row in connection.execute(
                select(person_distinct_ids.c.distinct_id, person_distinct_ids.c.person_id).where(
                    person_distinct_ids.c.scope_id == scope_id,
                    person_distinct_ids.c.person_id.in_(chunk),
                )
            )
        )
    version = next_value()  # stamped after the change, while the transaction holds its locks
    person_rows: list[list[Any]] = []
    for person_id in wanted:
        row = found.get(person_id)
        if row is None:
            person_rows.append([scope_id, person_id, "{}", False, 0, 1, version])
        else:
            person_rows.append(
                [
                    scope_id,
                    person_id,
                    _json(row.properties),
                    bool(row.is_identified),
                    to_micros(row.created_at),
                    0,
                    version,
                ]
            )
    map_rows: list[list[Any]] = [[scope_id, d, p, 0, version] for d, p in sorted(mapped.items())]
    map_rows += [[scope_id, d, 0, 1, version] for d in sorted(set(gone_distinct_ids) - set(mapped))]
    if person_rows:
        insert(client, PERSONS, person_rows, PERSON_COLUMNS, settings)
    if map_rows:
        insert(client, DISTINCT_IDS, map_rows, MAP_COLUMNS, settings)
        if not forget and len(found) < len(wanted):
            insert(client, OVERRIDES, map_rows, MAP_COLUMNS, settings)
    return version


def forget_persons(
    client: Client,
    on_cluster: str,
    scope_id: str,
    person_ids: Collection[int],
    gone_distinct_ids: Collection[str],
    version: int,
) -> None:
    """After a delete or an anonymisation: remove the versions of ``person_ids`` older than
    ``version`` (they hold the properties and ids that were erased) and every map and override
    row of ``gone_distinct_ids`` (a distinct id with no row maps to no person, as a deleted one).
    Lightweight deletes: gone from every query when the command returns, physically removed
    when the parts next merge, as the person's events are."""
    sync = {"lightweight_deletes_sync": 2}
    if person_ids:
        client.command(
            f"DELETE FROM {PERSONS}{on_cluster} WHERE scope_id = {{scope:String}} "
            "AND id IN {ids:Array(Int64)} AND version < {version:UInt64}",
            parameters={"scope": scope_id, "ids": sorted(set(person_ids)), "version": version},
            settings=sync,
        )
    gone = sorted(set(gone_distinct_ids))
    for start in range(0, len(gone), _CHUNK):
        for table in (DISTINCT_IDS, OVERRIDES):
            client.command(
                f"DELETE FROM {table}{on_cluster} WHERE scope_id = {{scope:String}} "
                "AND distinct_id IN {ids:Array(String)}",
                parameters={"scope": scope_id, "ids": gone[start : start + _CHUNK]},
                settings=sync,
            )
