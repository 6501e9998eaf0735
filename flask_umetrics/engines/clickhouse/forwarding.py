"""The events GA4 forwarding reads, from ClickHouse: ``ga4/forwarding.py`` calls these in place
of its three SQL reads when the event store is ClickHouse.

The forwarding watermark is an ``events.id`` on SQL; here it is the ingestion sequence ``seq``,
which orders rows the same way (insertion order within a process; backfilled events keep their
SQL id as ``seq``, so a watermark carried over from SQL means the same events). Person consent
is read from SQL, the source of truth for persons, for the distinct ids of each page.

One process (chdb) assigns ``seq`` and inserts under one lock, so a row with a lower ``seq`` is
never stored after a higher one has been read. Several processes on a server can interleave:
there only rows whose ``seq`` is at least :data:`SETTLE_SECONDS` old are read, so an insert in
flight in another process lands before the watermark passes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, and_, select

from ...db.tables import person_distinct_ids, persons
from .schema import EVENTS

if TYPE_CHECKING:
    from .store import ClickHouseEventStore

#: On a server, rows younger than this (by ``seq``, a nanosecond clock) wait for the next run.
SETTLE_SECONDS = 60


@dataclass(frozen=True)
class ForwardRow:
    """One event as ``ga4/forwarding.py`` reads it (``id`` is ``seq``)."""

    id: int
    uuid: str
    event: str
    distinct_id: str
    ts: int
    session_id: str | None
    properties: Any
    event_consent: str | None
    person_consent: str | None
    person_ad_user_data: str | None = None
    person_ad_personalization: str | None = None


def _text(value: Any) -> str | None:
    """A JSON value as the SQL ``prop_text`` gives it: strings as they are, booleans as
    ``true``/``false``, anything else as JSON text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))


def _selected(
    store: ClickHouseEventStore, names: Sequence[str], after: int | None
) -> tuple[str, dict[str, Any]]:
    conditions = ["scope_id = {scope:String}", "event IN {names:Array(String)}"]
    parameters: dict[str, Any] = {"names": list(names)}
    if after is not None:
        conditions.append("seq > {after:UInt64}")
        parameters["after"] = max(after, 0)
    if not store.url.embedded:
        conditions.append("seq <= {settled:UInt64}")
        parameters["settled"] = time.time_ns() - SETTLE_SECONDS * 1_000_000_000
    return " AND ".join(conditions), parameters


def count_after(
    store: ClickHouseEventStore, scope: str, names: Sequence[str], after: int | None
) -> int:
    where, parameters = _selected(store, names, after)
    result = store.client.query(
        f"SELECT count() FROM {EVENTS} WHERE {where}", parameters={"scope": scope, **parameters}
    )
    return int(result.result_rows[0][0])


def stale_run(
    store: ClickHouseEventStore,
    scope: str,
    names: Sequence[str],
    after: int | None,
    cutoff_us: int,
) -> tuple[int, int | None]:
    """``(count, last seq)`` of the selected events older than ``cutoff_us`` that come before
    the first fresh one (by ``seq``), as the SQL path's two aggregates."""
    where, parameters = _selected(store, names, after)
    parameters = {"scope": scope, "cutoff": cutoff_us, **parameters}
    fresh = "ts >= fromUnixTimestamp64Micro({cutoff:Int64}, 'UTC')"
    first_fresh = store.client.query(
        f"SELECT min(seq), count() FROM {EVENTS} WHERE {where} AND {fresh}", parameters=parameters
    ).result_rows[0]
    bound = ""
    if int(first_fresh[1]):  # min() of no row is 0 in ClickHouse, not NULL
        bound = " AND seq < {first_fresh:UInt64}"
        parameters["first_fresh"] = int(first_fresh[0])
    count, last = store.client.query(
        f"SELECT count(), max(seq) FROM {EVENTS} WHERE {where}{bound}", parameters=parameters
    ).result_rows[0]
    return int(count), (int(last) if int(count) else None)


def page(
    store: ClickHouseEventStore,
    engine: Engine,
    scope: str,
    names: Sequence[str],
    after: int | None,
    size: int,
    person_properties: Sequence[str],
) -> list[ForwardRow]:
    """The next ``size`` selected events after ``after`` in ``seq`` order, with both consent
    markers and the person's ``person_properties`` (consent first, then the ad-consent ones;
    read from SQL)."""
    where, parameters = _selected(store, names, after)
    rows = store.client.query(
        "SELECT seq, uuid, event, distinct_id, toUnixTimestamp64Micro(ts) AS ts_us, session_id, "
        f"properties FROM {EVENTS} WHERE {where} ORDER BY seq LIMIT {{size:UInt32}}",
        parameters={"scope": scope, "size": size, **parameters},
    ).result_rows
    consent_property = person_properties[0]
    person = _person_properties(engine, scope, sorted({row[3] for row in rows}), person_properties)
    found = []
    for seq, uuid, event, distinct_id, ts_us, session_id, text in rows:
        properties = json.loads(text)
        own = properties.get(consent_property) if isinstance(properties, dict) else None
        found.append(
            ForwardRow(
                int(seq),
                uuid,
                event,
                distinct_id,
                int(ts_us),
                session_id,
                properties,
                _text(own),
                *person.get(distinct_id, (None,) * len(person_properties)),
            )
        )
    return found


def _person_properties(
    engine: Engine, scope: str, distinct_ids: Sequence[str], names: Sequence[str]
) -> Mapping[str, tuple[str | None, ...]]:
    """Each distinct id's person's ``names`` properties as text (as the SQL path's
    ``prop_text``), read from SQL."""
    if not distinct_ids:
        return {}
    query = (
        select(person_distinct_ids.c.distinct_id, persons.c.properties)
        .select_from(
            person_distinct_ids.join(persons, persons.c.id == person_distinct_ids.c.person_id)
        )
        .where(
            and_(
                person_distinct_ids.c.scope_id == scope,
                person_distinct_ids.c.distinct_id.in_(list(distinct_ids)),
            )
        )
    )
    with engine.connect() as connection:
        return {
            row.distinct_id: tuple(_text((row.properties or {}).get(name)) for name in names)
            for row in connection.execute(query)
        }
