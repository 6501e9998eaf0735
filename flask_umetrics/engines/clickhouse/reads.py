"""Reading stored events back out of ClickHouse row by row: the event export, the person export.

Rows come back in the shape the SQL readers give (``ts`` in µs since the epoch, ``properties``
decoded), with ``seq`` in the place of ``events.id``: the export pages by ``(ts, seq)`` as the SQL
export pages by ``(ts, id)``. Lightweight-deleted rows are invisible to every query here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .schema import EVENTS

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

#: ``ts`` is read as an integer under another name: an alias named ``ts`` would shadow the
#: column inside the WHERE clause (a ClickHouse rule the SQL dialects do not have).
_COLUMNS = (
    "uuid, event, distinct_id, toUnixTimestamp64Micro(ts) AS ts_us, session_id, active, "
    "properties, seq"
)
_CHUNK = 1000


@dataclass(frozen=True)
class StoredEvent:
    """One stored event, as the SQL readers' rows (``id`` is the ingestion sequence)."""

    uuid: str
    event: str
    distinct_id: str
    ts: int
    session_id: str | None
    active: bool
    properties: Any
    id: int


def _event(row: Sequence[Any]) -> StoredEvent:
    return StoredEvent(
        row[0], row[1], row[2], int(row[3]), row[4], bool(row[5]), json.loads(row[6]), int(row[7])
    )


def page_events(
    client: Client,
    scope_id: str,
    from_us: int | None,
    to_us: int | None,
    event: str | None,
    after: tuple[int, int] | None,
    size: int,
) -> list[StoredEvent]:
    """The next ``size`` events of the scope in ``(ts, seq)`` order after ``after``."""
    conditions = ["scope_id = {scope:String}"]
    parameters: dict[str, Any] = {"scope": scope_id, "size": size}
    if from_us is not None:
        conditions.append("ts >= fromUnixTimestamp64Micro({from_us:Int64}, 'UTC')")
        parameters["from_us"] = from_us
    if to_us is not None:
        conditions.append("ts < fromUnixTimestamp64Micro({to_us:Int64}, 'UTC')")
        parameters["to_us"] = to_us
    if event is not None:
        conditions.append("event = {event:String}")
        parameters["event"] = event
    if after is not None:
        conditions.append(
            "(ts, seq) > (fromUnixTimestamp64Micro({after_ts:Int64}, 'UTC'), {after_seq:UInt64})"
        )
        parameters["after_ts"], parameters["after_seq"] = after
    result = client.query(
        f"SELECT {_COLUMNS} FROM {EVENTS} WHERE {' AND '.join(conditions)} "
        "ORDER BY ts, seq LIMIT {size:UInt32}",
        parameters=parameters,
    )
    return [_event(row) for row in result.result_rows]


def person_events(client: Client, scope_id: str, distinct_ids: Sequence[str]) -> list[StoredEvent]:
    """Every stored event of ``distinct_ids`` (any order)."""
    found: list[StoredEvent] = []
    for start in range(0, len(distinct_ids), _CHUNK):
        result = client.query(
            f"SELECT {_COLUMNS} FROM {EVENTS} "
            "WHERE scope_id = {scope:String} AND distinct_id IN {ids:Array(String)}",
            parameters={"scope": scope_id, "ids": list(distinct_ids[start : start + _CHUNK])},
        )
        found += [_event(row) for row in result.result_rows]
    return found
