"""Person overrides on ClickHouse: which events carry a person their distinct id no longer has,
and the squash that rewrites them.

Each event is stored with its distinct id's person at ingestion (``person_id``). A merge
moves distinct ids to another person after their events were stored; instead of rewriting
those events at once (a ClickHouse mutation per identify), the moved distinct ids get a row in
``umetrics_person_overrides`` (``mirror.mirror_persons``). Reports read the stored person while
the scope has no override, and the distinct-id map while it has one
(``expressions.person_events``): both give the same persons. :func:`squash` (scheduled by
``UMETRICS_CLICKHOUSE_SQUASH_SCHEDULE``, or ``flask umetrics clickhouse squash``) rewrites the
events of overridden distinct ids to their person and removes those overrides, so reports go
back to reading without a join. This is PostHog's ``person_overrides`` squash.

Only overrides older than ``min_age`` are squashed: an event batch resolves its persons just
before its insert, so a batch that read a person before a merge is stored within seconds of it;
ten minutes leaves no such event behind a squash (it would carry the merged-away person with no
override left to correct it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING, Any

from .schema import DISTINCT_IDS, EVENTS, EVENTS_LOCAL, OVERRIDES, quote

if TYPE_CHECKING:
    from .store import ClickHouseEventStore

#: Overrides younger than this (seconds) are left for the next squash (see the module docstring).
MIN_AGE_SECONDS = 600
#: Distinct ids rewritten per mutation.
CHUNK = 10_000


def has_overrides(scope_id: str) -> bool:
    """Whether any distinct id of ``scope_id`` has an override (reports then read persons
    through the distinct-id map). One primary-key look-up."""
    from ...state import current_state

    client = current_state().event_store.client  # type: ignore[attr-defined]
    result = client.query(
        f"SELECT count() FROM (SELECT 1 FROM {OVERRIDES} WHERE scope_id = {{scope:String}} "
        "LIMIT 1)",
        parameters={"scope": scope_id},
    )
    return bool(result.result_rows[0][0])


@dataclass(frozen=True)
class SquashResult:
    """What :func:`squash` did: ``distinct_ids`` overrides squashed in ``scopes`` scopes,
    ``events`` events rewritten, ``left`` overrides too young to squash yet."""

    distinct_ids: int
    scopes: int
    events: int
    left: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "distinct_ids": self.distinct_ids,
            "scopes": self.scopes,
            "events": self.events,
            "left": self.left,
        }


def squash(
    store: ClickHouseEventStore,
    *,
    min_age_seconds: float = MIN_AGE_SECONDS,
    progress: Callable[[str, int, int], None] | None = None,
) -> SquashResult:
    """Rewrite ``person_id`` on the events of every distinct id with an override older than
    ``min_age_seconds`` to its person in the distinct-id map (0 for a deleted or unmapped one:
    read as no person), then
    remove those overrides (a newer one for the same distinct id stays). Idempotent: a squash
    stopped half-way leaves overrides that the next run rewrites again to the same person.
    ``progress(scope, done, total)`` after each chunk."""
    client = store.client
    cutoff = time.time_ns() - int(min_age_seconds * 1_000_000_000)
    # The person comes from the distinct-id map, not the override: the map holds the newest
    # state (a later mirror repairs one whose SQL transaction was lost); the override only says
    # which distinct ids carry a stale person on their events.
    rows = client.query(
        "SELECT o.scope_id, o.distinct_id, ifNull(m.person_id, 0), ifNull(m.is_deleted, 1), "
        f"o.version FROM (SELECT scope_id, distinct_id, version FROM {OVERRIDES} FINAL) AS o "
        "LEFT JOIN (SELECT scope_id, distinct_id, person_id, is_deleted "
        f"FROM {DISTINCT_IDS} FINAL) AS m "
        "ON o.scope_id = m.scope_id AND o.distinct_id = m.distinct_id "
        "ORDER BY o.scope_id, o.distinct_id",
        settings={"join_use_nulls": 1},
    ).result_rows
    due = [row for row in rows if int(row[4]) <= cutoff]
    cluster = f" ON CLUSTER {quote(store.cluster)}" if store.cluster else ""
    events_table = f"{EVENTS_LOCAL}{cluster}" if store.cluster else EVENTS
    scopes = events = 0
    for scope_id, group in groupby(due, key=lambda row: row[0]):
        scopes += 1
        chunk_rows = list(group)
        for start in range(0, len(chunk_rows), CHUNK):
            chunk = chunk_rows[start : start + CHUNK]
            ids = [row[1] for row in chunk]
            persons = [0 if row[3] else int(row[2]) for row in chunk]
            parameters = {"scope": scope_id, "ids": ids, "persons": persons, "cutoff": cutoff}
            where = "scope_id = {scope:String} AND distinct_id IN {ids:Array(String)}"
            events += int(
                client.query(
                    f"SELECT count() FROM {EVENTS} WHERE {where}", parameters=parameters
                ).result_rows[0][0]
            )
            client.command(
                f"ALTER TABLE {events_table} UPDATE person_id = transform(distinct_id, "
                "{ids:Array(String)}, {persons:Array(Int64)}, person_id) "
                f"WHERE {where}",
                parameters=parameters,
                settings={"mutations_sync": 2},
            )
            client.command(
                f"DELETE FROM {OVERRIDES}{cluster} WHERE {where} AND version <= {{cutoff:UInt64}}",
                parameters=parameters,
                settings={"lightweight_deletes_sync": 2},
            )
            if progress is not None:
                progress(scope_id, start + len(chunk), len(chunk_rows))
    return SquashResult(
        distinct_ids=len(due), scopes=scopes, events=events, left=len(rows) - len(due)
    )
