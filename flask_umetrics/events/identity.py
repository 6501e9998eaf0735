"""Identity: distinct ids, persons, merging on identify, and person properties (DESIGN.md §5).

Every distinct id maps to one person through ``umetrics_person_distinct_ids``. A merge re-points
the merged person's ids at the surviving person and deletes the merged one; events are never
rewritten, and every report joins through the map, so the merge is retroactive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, String, any_, cast, delete, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from ..db.tables import person_distinct_ids, persons
from ..db.types import utcnow
from ..db.upsert import insert_ignoring_conflicts
from ..errors import ValidationError
from ..state import current_state, resolve_scope
from .validation import MAX_ID_LENGTH, Limits, check_properties

if TYPE_CHECKING:
    from ..engines import NewPerson

_CHUNK = 500


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def person_ids_of(
    connection: Connection, scope_id: str, distinct_ids: Iterable[str]
) -> dict[str, int]:
    """The person id of each given distinct id that has one."""
    found: dict[str, int] = {}
    wanted = sorted(set(distinct_ids))
    columns = select(person_distinct_ids.c.distinct_id, person_distinct_ids.c.person_id)
    if connection.dialect.name == "postgresql":
        # One array parameter: the same statement text for any number of ids (parsed once).
        rows = connection.execute(
            columns.where(
                person_distinct_ids.c.scope_id == scope_id,
                person_distinct_ids.c.distinct_id == any_(cast(wanted, ARRAY(String))),
            )
        )
        return {row.distinct_id: row.person_id for row in rows}
    for chunk in _chunks(wanted):
        rows = connection.execute(
            columns.where(
                person_distinct_ids.c.scope_id == scope_id,
                person_distinct_ids.c.distinct_id.in_(chunk),
            )
        )
        found.update({row.distinct_id: row.person_id for row in rows})
    return found


def ensure_persons(
    connection: Connection,
    scope_id: str,
    first_seen: Mapping[str, datetime],
    created: dict[str, NewPerson] | None = None,
) -> dict[str, int]:
    """Give every distinct id in ``first_seen`` a person (new ones created); return the map.

    Safe against a concurrent writer creating the same distinct id: the map insert skips
    conflicts, and a person that lost the race is deleted again. ``created`` receives the
    persons this call created (not those a concurrent writer won with), for the event store.
    """
    known = person_ids_of(connection, scope_id, first_seen)
    missing = [d for d in first_seen if d not in known]
    if not missing:
        return known
    create = (
        _create_persons_postgresql
        if connection.dialect.name == "postgresql"
        else _create_persons_generic
    )
    made, mine = create(connection, scope_id, missing, first_seen)
    known.update(made)
    if created is not None:
        from ..engines import NewPerson

        created.update({d: NewPerson(made[d], first_seen[d]) for d in mine})
    return known


def _create_persons_generic(
    connection: Connection, scope_id: str, missing: list[str], first_seen: Mapping[str, datetime]
) -> tuple[dict[str, int], list[str]]:
    """Create a person per missing distinct id; a concurrent writer's mapping wins (our person
    for that id is deleted again). The map, and the ids whose person is ours."""
    created = (
        connection.execute(
            insert(persons).returning(persons.c.id, sort_by_parameter_order=True),
            [
                {
                    "scope_id": scope_id,
                    "properties": {},
                    "created_at": first_seen[d],
                    "is_identified": False,
                }
                for d in missing
            ],
        )
        .scalars()
        .all()
    )
    proposed = dict(zip(missing, created, strict=True))
    connection.execute(
        insert_ignoring_conflicts(connection, person_distinct_ids, "scope_id", "distinct_id"),
        [{"scope_id": scope_id, "distinct_id": d, "person_id": p} for d, p in proposed.items()],
    )
    actual = person_ids_of(connection, scope_id, missing)
    orphans = [p for d, p in proposed.items() if actual.get(d) != p]
    if orphans:
        connection.execute(delete(persons).where(persons.c.id.in_(orphans)))
    return actual, [d for d, p in proposed.items() if actual.get(d) == p]


_NEXT_PERSON_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('umetrics_persons', 'id')) FROM generate_series(1, :n)"
)
_INSERT_PERSONS = text(
    "INSERT INTO umetrics_persons (id, scope_id, properties, created_at, is_identified) "
    "SELECT i, :scope, CAST('{}' AS JSONB), c, false "
    "FROM unnest(CAST(:ids AS BIGINT[]), CAST(:created AS TIMESTAMPTZ[])) AS r(i, c)"
)
_INSERT_DISTINCT_IDS = text(
    "INSERT INTO umetrics_person_distinct_ids (scope_id, distinct_id, person_id) "
    "SELECT :scope, d, i FROM unnest(CAST(:dids AS TEXT[]), CAST(:ids AS BIGINT[])) AS r(d, i) "
    "ON CONFLICT (scope_id, distinct_id) DO NOTHING RETURNING distinct_id"
)


def _create_persons_postgresql(
    connection: Connection, scope_id: str, missing: list[str], first_seen: Mapping[str, datetime]
) -> tuple[dict[str, int], list[str]]:
    """The same as the generic path in fixed-shape statements (parsed once per connection):
    take ids from the sequence, insert persons and their ids from arrays."""
    ids = list(connection.execute(_NEXT_PERSON_IDS, {"n": len(missing)}).scalars())
    connection.execute(
        _INSERT_PERSONS,
        {"scope": scope_id, "ids": ids, "created": [first_seen[d] for d in missing]},
    )
    taken = set(
        connection.execute(
            _INSERT_DISTINCT_IDS, {"scope": scope_id, "dids": missing, "ids": ids}
        ).scalars()
    )
    proposed = dict(zip(missing, ids, strict=True))
    lost = [d for d in missing if d not in taken]
    if not lost:  # the usual case: no concurrent writer created the same ids
        return proposed, missing
    connection.execute(delete(persons).where(persons.c.id.in_([proposed[d] for d in lost])))
    actual = person_ids_of(connection, scope_id, lost)
    mine = [d for d in missing if d in taken]
    return {**{d: proposed[d] for d in mine}, **actual}, mine


def _check_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise ValidationError(
            field, f"must be a non-empty string of at most {MAX_ID_LENGTH} characters"
        )
    if "\x00" in value:  # PostgreSQL cannot store or compare text holding NUL
        raise ValidationError(field, "must not contain NUL characters")
    return value


def _load_person(connection: Connection, person_id: int) -> Any:
    return connection.execute(
        select(persons).where(persons.c.id == person_id).with_for_update()
    ).one()


def merge_persons(connection: Connection, keep_id: int, merge_id: int) -> None:
    """Fold person ``merge_id`` into ``keep_id``; ``keep_id``'s property values win."""
    if keep_id == merge_id:
        return
    keep, merged = _load_person(connection, keep_id), _load_person(connection, merge_id)
    connection.execute(
        update(person_distinct_ids)
        .where(person_distinct_ids.c.person_id == merge_id)
        .values(person_id=keep_id)
    )
    connection.execute(
        update(persons)
        .where(persons.c.id == keep_id)
        .values(
            properties={**(merged.properties or {}), **(keep.properties or {})},
            created_at=min(keep.created_at, merged.created_at),
            is_identified=True,
        )
    )
    connection.execute(delete(persons).where(persons.c.id == merge_id))


def _apply_properties(
    connection: Connection,
    person_id: int,
    set_values: Mapping[str, Any] | None,
    set_once: Mapping[str, Any] | None,
) -> None:
    if not set_values and not set_once:
        return
    person = _load_person(connection, person_id)
    properties = dict(person.properties or {})
    properties.update(set_values or {})
    for key, value in (set_once or {}).items():
        properties.setdefault(key, value)
    check_properties(properties, Limits.from_settings(current_state().settings), "properties")
    connection.execute(
        update(persons).where(persons.c.id == person_id).values(properties=properties)
    )


def identify(
    distinct_id: str,
    *,
    anon_id: str | None = None,
    traits: Mapping[str, Any] | None = None,
    scope_id: str | None = None,
) -> int:
    """Mark ``distinct_id`` as a known user, merge ``anon_id``'s person into it, set ``traits``.

    Idempotent and order-independent: the persons that result are the connected groups of all
    identify links. Returns the person id.
    """
    scope = resolve_scope(scope_id)
    _check_id(distinct_id, "distinct_id")
    if anon_id is not None:
        _check_id(anon_id, "anon_id")
    limits = Limits.from_settings(current_state().settings)
    traits = check_properties(traits, limits, "traits")
    now = utcnow()
    state = current_state()
    with state.engine.begin() as connection:
        seen = {distinct_id: now} | ({anon_id: now} if anon_id else {})
        ids = ensure_persons(connection, scope, seen)
        person_id = ids[distinct_id]
        if anon_id is not None and ids[anon_id] != person_id:
            merge_persons(connection, person_id, ids[anon_id])
        connection.execute(
            update(persons).where(persons.c.id == person_id).values(is_identified=True)
        )
        _apply_properties(connection, person_id, traits, None)
        state.event_store.mirror_persons(connection, scope, set(ids.values()))
    return person_id


def set_person_properties(
    distinct_id: str,
    set: Mapping[str, Any] | None = None,  # the name PostHog users know
    set_once: Mapping[str, Any] | None = None,
    *,
    scope_id: str | None = None,
) -> int:
    """``$set`` (overwrite) and ``$set_once`` (keep the first value) on the person; its id."""
    scope = resolve_scope(scope_id)
    _check_id(distinct_id, "distinct_id")
    limits = Limits.from_settings(current_state().settings)
    set_values = check_properties(set, limits, "set")
    once_values = check_properties(set_once, limits, "set_once")
    state = current_state()
    with state.engine.begin() as connection:
        person_id = ensure_persons(connection, scope, {distinct_id: utcnow()})[distinct_id]
        _apply_properties(connection, person_id, set_values, once_values)
        state.event_store.mirror_persons(connection, scope, [person_id])
    return person_id
