"""Events in ClickHouse: batched synchronous inserts, stored once per ``(scope_id, uuid)``.

Exactly-once, in two layers:

1. Before inserting, the batch is deduplicated by ``(scope_id, uuid)`` (first row wins, as the
   SQL insert keeps the first) and the uuids already stored are looked up (``uuid IN [...]`` per
   scope, in chunks, helped by a bloom-filter index on ``uuid``) and skipped. Those are the
   duplicates ``WriteResult`` counts, exactly, when one process writes. A re-send with the same
   uuid and another timestamp is found here too, wherever its first copy landed.
2. The insert carries an ``insert_deduplication_token`` made from the batch's uuids, and the
   table remembers recent tokens, so a retried insert whose first attempt did land (a timeout
   after the server wrote the part) is dropped by ClickHouse itself.

Within a process, look-up and insert hold one lock, so concurrent threads (a threaded gunicorn
worker, the buffer's timer) cannot both miss the same uuid: with chdb, which is one process, the
promise is exact. Two *processes* inserting the same uuid at the same instant can both miss it;
that case is not deduplicated at write (see docs/clickhouse.md: reads will ``LIMIT 1 BY uuid``).

Inserts are synchronous (``async_insert=0``; on a cluster ``insert_distributed_sync=1``): the
call returns after ClickHouse wrote the rows, and a failure raises, so the caller (REST: 503;
the ``track()`` buffer: keeps the rows) never acknowledges an event that is not stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection

from ...errors import EventStoreUnavailable
from .. import NewPerson
from . import mirror
from .client import ClickHouseURL, get_client, insert
from .mirror import MAP_COLUMNS
from .schema import DISTINCT_IDS, EVENTS, EVENTS_LOCAL, OVERRIDES, quote
from .sequence import next_values

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

logger = logging.getLogger("flask_umetrics")

EVENT_COLUMNS = [
    "scope_id",
    "uuid",
    "event",
    "distinct_id",
    "ts",
    "session_id",
    "active",
    "properties",
    "person_id",
    "seq",
]
#: The prefix of an anonymised event's uuid; the rest is its ingestion sequence number.
ANONYMIZED_UUID_PREFIX = "anon-event-"
LOOKUP_CHUNK = 1000
#: Attempts of one insert on a connection error (same rows, same deduplication token).
INSERT_ATTEMPTS = 3


@dataclass(eq=False)
class _Waiting:
    """One batch in the group commit of ``insert_events``."""

    #: The batch's rows as inserted (without ``seq``), by ``(scope_id, uuid)``.
    unique: Mapping[tuple[str, str], list[Any]]
    #: The persons the batch's SQL transaction created, mirrored with the group's events.
    new_persons: Mapping[str, Mapping[str, NewPerson]] = field(default_factory=dict)
    stored: int = 0
    done: bool = False
    error: Exception | None = None


@dataclass(frozen=True)
class EventPruneResult:
    """What :meth:`ClickHouseEventStore.prune_events` removed: ``deleted`` events in all, of
    which ``rows_in_dropped_partitions`` went with the whole months ``partitions_dropped``
    (``YYYYMM``) and ``rows_deleted`` by a lightweight delete in the cutoff's month."""

    deleted: int
    partitions_dropped: list[str]
    rows_in_dropped_partitions: int
    rows_deleted: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "deleted": self.deleted,
            "partitions_dropped": list(self.partitions_dropped),
            "rows_in_dropped_partitions": self.rows_in_dropped_partitions,
            "rows_deleted": self.rows_deleted,
        }


class ClickHouseEventStore:
    """The event store of ``UMETRICS_EVENT_STORE=clickhouse``; the client is created on first
    use, in the process that uses it (never in a pre-fork parent by ``init_app``)."""

    name = "clickhouse"

    def __init__(self, url: ClickHouseURL, cluster: str | None = None) -> None:
        self.url = url
        self.cluster = cluster
        #: Held from the uuid look-up to the end of the insert (see the module docstring).
        self._insert_lock = threading.Lock()
        #: Batches waiting for the lock; whoever holds it stores them all at once (below).
        self._waiting: list[_Waiting] = []
        self._waiting_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClickHouseEventStore({self.url.redacted()!r}, cluster={self.cluster!r})"

    @property
    def client(self) -> Client:
        return get_client(self.url)

    @property
    def _write_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"async_insert": 0}
        if self.cluster:
            settings["insert_distributed_sync"] = 1
        return settings

    # -- events -----------------------------------------------------------------------------

    def insert_events(
        self,
        connection: Connection,
        rows: Sequence[Mapping[str, Any]],
        new_persons: Mapping[str, Mapping[str, NewPerson]],
        persons: Mapping[str, Mapping[str, int]],
    ) -> int:
        unique: dict[tuple[str, str], Mapping[str, Any]] = {}
        for row in rows:
            unique.setdefault((row["scope_id"], row["uuid"]), row)
        return self._insert_combined(self.client, unique, persons, new_persons)

    def _insert_combined(
        self,
        client: Client,
        unique: Mapping[tuple[str, str], Mapping[str, Any]],
        persons: Mapping[str, Mapping[str, int]],
        new_persons: Mapping[str, Mapping[str, NewPerson]] | None = None,
    ) -> int:
        """Group commit: the batch joins the waiting list, then waits for the insert lock; the
        thread that holds it stores every waiting batch with one look-up and one insert (first
        come, first stored: a uuid sent by two batches counts for the earlier one), after
        mirroring the persons they created with one insert per table. Threads of one worker then
        share ClickHouse round trips instead of queueing for one each. If the combined insert
        fails, each batch is tried on its own, so one batch ClickHouse refuses fails alone. The
        rows are made ready for the insert (properties as JSON) before waiting, by each batch's
        own thread, so the lock is held for ClickHouse's work, not for ours."""
        mine = _Waiting(
            {key: _values(row, persons[key[0]][row["distinct_id"]]) for key, row in unique.items()},
            new_persons or {},
        )
        with self._waiting_lock:
            self._waiting.append(mine)
        with self._insert_lock:
            if not mine.done:
                with self._waiting_lock:
                    group, self._waiting = self._waiting, []
                self._store_group(client, group)
        if mine.error is not None:
            raise mine.error
        return mine.stored

    def _store_group(self, client: Client, group: list[_Waiting]) -> None:
        try:
            settings = self._write_settings
            self._retrying(
                "mirror new persons",
                lambda: mirror.mirror_new_persons(
                    client, [waiting.new_persons for waiting in group], settings
                ),
            )
            merged: dict[tuple[str, str], list[Any]] = {}
            owner: dict[tuple[str, str], _Waiting] = {}
            for waiting in group:
                for key, row in waiting.unique.items():
                    if key not in merged:
                        merged[key], owner[key] = row, waiting
            for key in self._insert_fresh(client, merged):
                owner[key].stored += 1
        except Exception as exc:  # noqa: BLE001 - re-raised in each caller's thread
            if len(group) == 1 or isinstance(exc, EventStoreUnavailable):
                for waiting in group:  # ClickHouse is down: every batch fails the same way
                    waiting.error = exc
            else:
                for waiting in group:
                    waiting.stored = 0
                    self._store_group(client, [waiting])
        finally:
            for waiting in group:
                waiting.done = True

    def copy_events(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Store rows that carry their own ``seq`` (the backfill gives each SQL event its
        ``events.id``), each ``(scope_id, uuid)`` once; how many were stored."""
        unique: dict[tuple[str, str], Mapping[str, Any]] = {}
        for row in rows:
            unique.setdefault((row["scope_id"], row["uuid"]), row)
        client = self.client
        values = {key: _values(row, row["person_id"]) for key, row in unique.items()}
        own_seq = {key: row["seq"] for key, row in unique.items()}
        with self._insert_lock:
            return len(self._insert_fresh(client, values, own_seq))

    def _insert_fresh(
        self,
        client: Client,
        unique: Mapping[tuple[str, str], list[Any]],
        own_seq: Mapping[tuple[str, str], int] | None = None,
    ) -> list[tuple[str, str]]:
        """Look up which rows (from ``_values``) are stored already, insert the rest, each with
        the next ``seq`` (or its own); the keys inserted."""
        stored = self._stored(client, unique)
        self._override_stale(client, unique, stored)
        keys = [key for key in unique if key not in stored]
        if not keys:
            return []
        sequence = [own_seq[key] for key in keys] if own_seq else next_values(len(keys))
        data = [[*unique[key], seq] for key, seq in zip(keys, sequence, strict=True)]
        token = _token(keys)
        settings = {**self._write_settings, "insert_deduplication_token": token}
        self._retrying(
            "insert events",
            lambda: insert(client, EVENTS, data, EVENT_COLUMNS, settings),
        )
        return keys

    def _stored(
        self, client: Client, keys: Mapping[tuple[str, str], Any]
    ) -> dict[tuple[str, str], int]:
        """Which of ``keys`` (scope, uuid) are stored already, with the person id stored. The
        look-up reads uuids only (the index's column); the person ids of the few found are read
        by a second query, so a batch with no duplicate (the usual case) costs one."""
        by_scope: dict[str, list[str]] = {}
        for scope_id, uuid in keys:
            by_scope.setdefault(scope_id, []).append(uuid)
        found: dict[tuple[str, str], int] = {}
        for scope_id, uuids in by_scope.items():
            for start in range(0, len(uuids), LOOKUP_CHUNK):
                chunk = uuids[start : start + LOOKUP_CHUNK]
                result = self._retrying(
                    "look up uuids",
                    lambda chunk=chunk, scope_id=scope_id: client.query(
                        f"SELECT DISTINCT uuid FROM {EVENTS} "
                        "WHERE scope_id = {scope:String} AND uuid IN {uuids:Array(String)}",
                        parameters={"scope": scope_id, "uuids": chunk},
                    ),
                )
                again = [uuid for (uuid,) in result.result_rows]
                if not again:
                    continue
                persons = self._retrying(
                    "look up stored persons",
                    lambda again=again, scope_id=scope_id: client.query(
                        f"SELECT uuid, any(person_id) FROM {EVENTS} WHERE scope_id = "
                        "{scope:String} AND uuid IN {uuids:Array(String)} GROUP BY uuid",
                        parameters={"scope": scope_id, "uuids": again},
                    ),
                )
                found.update(((scope_id, uuid), int(p)) for uuid, p in persons.result_rows)
        return found

    def _override_stale(
        self,
        client: Client,
        rows: Mapping[tuple[str, str], list[Any]],
        stored: Mapping[tuple[str, str], int],
    ) -> None:
        """A re-sent event stored with another person than its distinct id has now: its first
        write's person was rolled back in SQL after ClickHouse stored it (a retry after a lost
        commit). The distinct id gets an override to its current person, so the copy already
        stored is read as that person's (``overrides.py``)."""
        moved: dict[tuple[str, str], int] = {}
        for key, person_id in stored.items():
            row = rows[key]
            if person_id != row[_PERSON]:
                moved[(key[0], row[_DISTINCT_ID])] = row[_PERSON]
        if moved:
            version = next_values(1)[0]
            data = [[s, d, p, 0, version] for (s, d), p in sorted(moved.items())]
            self._retrying(
                "write person overrides",
                lambda: insert(client, OVERRIDES, data, MAP_COLUMNS, self._write_settings),
            )

    def _retrying(self, what: str, call: Any) -> Any:
        """Run ``call``; on a connection error try again (twice), then raise
        ``EventStoreUnavailable``. Errors ClickHouse answers (bad SQL, bad data) raise at once."""
        from clickhouse_connect.driver.exceptions import OperationalError

        for attempt in range(1, INSERT_ATTEMPTS + 1):
            try:
                return call()
            except OperationalError as exc:
                if attempt == INSERT_ATTEMPTS:
                    raise EventStoreUnavailable(
                        f"ClickHouse at {self.url.redacted()} did not answer ({what}): "
                        f"{type(exc).__name__}"
                    ) from None
                logger.warning(
                    "flask-umetrics: ClickHouse %s failed (attempt %d of %d); retrying",
                    what,
                    attempt,
                    INSERT_ATTEMPTS,
                )
                time.sleep(0.2 * attempt)
        raise AssertionError("unreachable")

    # -- privacy ----------------------------------------------------------------------------

    def _person_filter(self) -> str:
        return "scope_id = {scope:String} AND distinct_id IN {ids:Array(String)}"

    def _count(self, scope_id: str, distinct_ids: Sequence[str]) -> int:
        result = self.client.query(
            f"SELECT count() FROM {EVENTS} WHERE {self._person_filter()}",
            parameters={"scope": scope_id, "ids": list(distinct_ids)},
        )
        return int(result.result_rows[0][0])

    def _delete(self, scope_id: str, distinct_ids: Sequence[str]) -> None:
        """A lightweight delete: rows vanish from every query at once (the command waits for
        it), and are physically removed when their parts are next merged."""
        table = f"{EVENTS_LOCAL} ON CLUSTER {quote(self.cluster)}" if self.cluster else EVENTS
        self.client.command(
            f"DELETE FROM {table} WHERE {self._person_filter()}",
            parameters={"scope": scope_id, "ids": list(distinct_ids)},
            settings={"lightweight_deletes_sync": 2},
        )

    def delete_person_events(
        self, connection: Connection, scope_id: str, distinct_ids: Sequence[str]
    ) -> int:
        if not distinct_ids:
            return 0
        return int(
            self._retrying("delete events", lambda: self._delete_counted(scope_id, distinct_ids))
        )

    def _delete_counted(self, scope_id: str, distinct_ids: Sequence[str]) -> int:
        removed = self._count(scope_id, distinct_ids)
        if removed:
            self._delete(scope_id, distinct_ids)
        return removed

    def anonymize_person_events(
        self,
        connection: Connection,
        scope_id: str,
        renames: Mapping[str, str],
        pii_keys: Collection[str],
    ) -> int:
        """Re-insert the person's events renamed and without ``pii_keys``, then delete the
        originals (ClickHouse cannot edit a JSON string in place). Insert first: a failure in
        between leaves both copies and raises, so the SQL transaction rolls back and the
        anonymisation can be run again; it never leaves the originals unnoticed. A retry after a
        lost connection inserts the same rows with the same token, which ClickHouse drops."""
        if not renames:
            return 0
        return int(
            self._retrying("anonymise events", lambda: self._anonymize(scope_id, renames, pii_keys))
        )

    def _anonymize(
        self, scope_id: str, renames: Mapping[str, str], pii_keys: Collection[str]
    ) -> int:
        old_ids = list(renames)
        # Each event is re-stored as the person its distinct id maps to now (an event stored
        # before a merge carries the merged-away id, and this removes the ids' overrides).
        result = self.client.query(
            "SELECT e.event, e.distinct_id, toUnixTimestamp64Micro(e.ts), e.session_id, e.active, "
            "e.properties, if(m.map_person_id IS NULL, e.person_id, m.map_person_id), e.seq "
            f"FROM {EVENTS} AS e LEFT JOIN (SELECT distinct_id AS map_distinct_id, person_id AS "
            f"map_person_id FROM {DISTINCT_IDS} FINAL WHERE {self._person_filter()} "
            "AND is_deleted = 0) AS m ON e.distinct_id = m.map_distinct_id "
            "WHERE e.scope_id = {scope:String} AND e.distinct_id IN {ids:Array(String)} "
            "ORDER BY e.seq",
            parameters={"scope": scope_id, "ids": old_ids},
            settings={"join_use_nulls": 1},
        )
        data = []
        for event, distinct_id, us, session, active, text, person_id, seq in result.result_rows:
            properties = json.loads(text)
            if isinstance(properties, dict):
                properties = {k: v for k, v in properties.items() if k not in pii_keys}
            renamed = {
                "scope_id": scope_id,
                "uuid": f"{ANONYMIZED_UUID_PREFIX}{seq}",
                "event": event,
                "distinct_id": renames[distinct_id],
                "ts": us,
                "session_id": session,
                "active": active,
                "properties": properties,
            }
            data.append([*_values(renamed, person_id), seq])
        if data:
            settings = {**self._write_settings, "insert_deduplication_token": _token_of(data)}
            self.client.insert(EVENTS, data, column_names=EVENT_COLUMNS, settings=settings)
            self._delete(scope_id, old_ids)
        return len(data)

    # -- retention --------------------------------------------------------------------------

    def prune_events(self, cutoff_us: int) -> EventPruneResult:
        """Remove every event older than ``cutoff_us`` (all scopes), by month.

        Months wholly before the cutoff are dropped as partitions (``DROP PARTITION``: the data
        leaves every query at once and its files are removed from disk right after, without a
        rewrite); the rows of the cutoff's own month that are older than it are removed with a
        lightweight ``DELETE`` (hidden at once, physically gone when their parts next merge).
        Counts are of rows visible before the removal (rows hidden by earlier deletions are not
        counted again)."""
        return cast(
            EventPruneResult, self._retrying("prune events", lambda: self._prune(cutoff_us))
        )

    def _prune(self, cutoff_us: int) -> EventPruneResult:
        client = self.client
        cutoff = "fromUnixTimestamp64Micro({cutoff:Int64}, 'UTC')"
        counted = client.query(
            f"SELECT toYYYYMM(ts) AS month, count() FROM {EVENTS} WHERE ts < {cutoff} "
            "GROUP BY month ORDER BY month",
            parameters={"cutoff": cutoff_us},
        ).result_rows
        cutoff_month = int(
            client.query(
                f"SELECT toYYYYMM({cutoff})", parameters={"cutoff": cutoff_us}
            ).result_rows[0][0]
        )
        # Every partition of an earlier month, counted or not (one holding only rows hidden by
        # lightweight deletes still holds their bytes); on a cluster this node's parts plus the
        # months counted through the Distributed table (dropping an absent partition is a no-op).
        parts = client.query(
            "SELECT DISTINCT partition_id FROM system.parts WHERE database = currentDatabase() "
            "AND table = {table:String} AND active",
            parameters={"table": EVENTS_LOCAL if self.cluster else EVENTS},
        ).result_rows
        months = {int(m) for (m,) in parts if str(m).isdigit()} | {int(m) for m, _ in counted}
        dropped = sorted(month for month in months if month < cutoff_month)
        table = f"{EVENTS_LOCAL} ON CLUSTER {quote(self.cluster)}" if self.cluster else EVENTS
        for month in dropped:
            client.command(f"ALTER TABLE {table} DROP PARTITION ID '{month}'")
        in_dropped = sum(int(n) for m, n in counted if int(m) < cutoff_month)
        partial = sum(int(n) for m, n in counted if int(m) >= cutoff_month)
        if partial:
            client.command(
                f"DELETE FROM {table} WHERE ts < {cutoff}",
                parameters={"cutoff": cutoff_us},
                settings={"lightweight_deletes_sync": 2},
            )
        return EventPruneResult(
            deleted=in_dropped + partial,
            partitions_dropped=[str(month) for month in dropped],
            rows_in_dropped_partitions=in_dropped,
            rows_deleted=partial,
        )

    # -- persons ----------------------------------------------------------------------------

    def mirror_persons(
        self,
        connection: Connection,
        scope_id: str,
        person_ids: Collection[int],
        gone_distinct_ids: Collection[str] = (),
        *,
        forget: bool = False,
    ) -> None:
        client, settings = self.client, self._write_settings
        version = self._retrying(
            "mirror persons",
            lambda: mirror.mirror_persons(
                client, connection, scope_id, person_ids, gone_distinct_ids, settings, forget=forget
            ),
        )
        if forget:
            on_cluster = f" ON CLUSTER {quote(self.cluster)}" if self.cluster else ""
            self._retrying(
                "forget persons",
                lambda: mirror.forget_persons(
                    client, on_cluster, scope_id, person_ids, gone_distinct_ids, version
                ),
            )


#: Where ``_values`` puts the distinct id and the person id.
_DISTINCT_ID = EVENT_COLUMNS.index("distinct_id")
_PERSON = EVENT_COLUMNS.index("person_id")


def _values(row: Mapping[str, Any], person_id: int) -> list[Any]:
    """The columns of ``EVENT_COLUMNS`` but ``seq`` for one row of ``normalize_event``, stored
    as ``person_id``'s."""
    return [
        row["scope_id"],
        row["uuid"],
        row["event"],
        row["distinct_id"],
        row["ts"],
        row["session_id"],
        bool(row["active"]),
        json.dumps(row["properties"], separators=(",", ":")),
        person_id,
    ]


def _token(keys: Sequence[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for scope_id, uuid in keys:
        digest.update(f"{scope_id}\x1f{uuid}\x1e".encode())
    return "umetrics-events-" + digest.hexdigest()


def _token_of(data: Sequence[Sequence[Any]]) -> str:
    digest = hashlib.sha256()
    for row in data:
        digest.update(f"{row[0]}\x1f{row[1]}\x1f{row[3]}\x1e".encode())
    return "umetrics-anonymized-" + digest.hexdigest()
