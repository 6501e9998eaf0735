"""Identity: merges are retroactive, idempotent and order-independent; person properties."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from flask_umetrics import identify, set_person_properties, track
from flask_umetrics.db.tables import person_distinct_ids, persons
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .events_data import stored_events

#: Persons and the distinct-id map stay in SQL on every store; on ClickHouse the events (read
#: through the map) are there, and the map is mirrored (tests/test_clickhouse_identity.py).
pytestmark = pytest.mark.event_stores


def _map_rows(scope: str = "default") -> list[tuple[int, str]]:
    """(person, distinct id) rows of the SQL map, the source of truth on every store."""
    with current_state().engine.connect() as connection:
        rows = connection.execute(
            select(person_distinct_ids.c.person_id, person_distinct_ids.c.distinct_id).where(
                person_distinct_ids.c.scope_id == scope
            )
        ).all()
    return [(int(p), str(d)) for p, d in rows]


def partition(app: Flask, scope: str = "default") -> set[frozenset[str]]:
    """The persons as sets of distinct ids."""
    groups: dict[int, set[str]] = {}
    for person_id, distinct_id in _map_rows(scope):
        groups.setdefault(person_id, set()).add(distinct_id)
    return {frozenset(g) for g in groups.values()}


def person_count(app: Flask) -> int:
    with current_state().engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(persons)).scalar_one())


def test_identify_merges_anonymous_history_into_the_user(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_TRACK_SYNC=True)
    with app.app_context():
        track("pageview", distinct_id="anon-1")
        track("pageview", distinct_id="anon-1")
        track("signup", distinct_id="user-1")
        assert partition(app) == {frozenset({"anon-1"}), frozenset({"user-1"})}
        identify("user-1", anon_id="anon-1", traits={"email": "a@example.com"})
        assert partition(app) == {frozenset({"anon-1", "user-1"})}
        assert person_count(app) == 1
        identify("user-1", anon_id="anon-1")  # idempotent
        assert partition(app) == {frozenset({"anon-1", "user-1"})} and person_count(app) == 1
        # Events are untouched; they reach the person through the map.
        person_of = {d: p for p, d in _map_rows()}
        per_person = Counter(person_of[e.distinct_id] for e in stored_events())
        with current_state().engine.connect() as connection:
            props = connection.execute(select(persons.c.properties, persons.c.is_identified)).one()
        assert [e.distinct_id for e in stored_events()] == ["anon-1", "anon-1", "user-1"]
        assert list(per_person.values()) == [3]
        assert props == ({"email": "a@example.com"}, True)


def test_identify_of_a_new_user_adopts_the_anonymous_person(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_TRACK_SYNC=True)
    with app.app_context():
        track("pageview", distinct_id="anon")
        identify("new-user", anon_id="anon")
        assert partition(app) == {frozenset({"anon", "new-user"})}
        assert person_count(app) == 1


def test_person_properties_set_and_set_once_and_merge_precedence(make_app: AppFactory) -> None:
    app = make_app()
    with app.app_context():
        set_person_properties(
            "anon", set={"plan": "free", "color": "red"}, set_once={"first_page": "/"}
        )
        set_person_properties("anon", set_once={"first_page": "/pricing", "source": "ads"})
        set_person_properties("user", set={"plan": "pro"})
        identify("user", anon_id="anon")
        with current_state().engine.connect() as connection:
            [properties] = connection.execute(select(persons.c.properties)).scalars().all()
        # The identified person's values win; the anonymous person's other values survive.
        assert properties == {"plan": "pro", "color": "red", "first_page": "/", "source": "ads"}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(links=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=8), data=st.data())
def test_merging_is_order_independent(
    app: Flask, links: list[tuple[int, int]], data: st.DataObject
) -> None:
    """Any order of the same identify calls gives the connected components of the links."""
    target = app  # one app (and database) for every example; each example starts empty
    expected: list[set[str]] = []
    for a, b in links:
        ids = {f"d{a}", f"d{b}"}
        touching = [group for group in expected if group & ids]
        merged = set(ids).union(*touching)
        expected = [group for group in expected if not group & ids] + [merged]
    order = data.draw(st.permutations(links))
    with target.app_context():
        with current_state().engine.begin() as connection:
            connection.execute(delete(person_distinct_ids))
            connection.execute(delete(persons))
        for a, b in order:
            identify(f"d{a}", anon_id=f"d{b}")
        for a, b in order[:2]:  # repeating calls changes nothing
            identify(f"d{b}", anon_id=f"d{a}")
        assert partition(target) == {frozenset(group) for group in expected}
        assert person_count(target) == len(expected)


def test_merge_order_examples(make_app: AppFactory) -> None:
    app = make_app()
    chains = [("u1", "a1"), ("u2", "a2"), ("u1", "a2")]
    results = set()
    for order in itertools.permutations(chains):
        with app.app_context():
            with current_state().engine.begin() as connection:
                connection.execute(delete(person_distinct_ids))
                connection.execute(delete(persons))
            for user, anon in order:
                identify(user, anon_id=anon)
            results.add(frozenset(partition(app)))
    assert results == {frozenset({frozenset({"u1", "a1", "u2", "a2"})})}


def test_a_concurrent_writer_wins_the_race_to_create_a_distinct_id(app: Flask) -> None:
    """Both creation paths: ids another writer mapped meanwhile keep that writer's person."""
    from datetime import datetime, timezone

    from flask_umetrics.events import identity

    with app.app_context():
        engine = current_state().engine
        with engine.begin() as connection:
            theirs = identity.ensure_persons(
                connection, "default", {"a": datetime.now(timezone.utc)}
            )
        create = (
            identity._create_persons_postgresql
            if engine.dialect.name == "postgresql"
            else identity._create_persons_generic
        )
        with engine.begin() as connection:  # as if "a" was still missing when we looked
            now = datetime.now(timezone.utc)
            result, mine = create(connection, "default", ["a", "b"], {"a": now, "b": now})
        assert result["a"] == theirs["a"] and result["b"] != theirs["a"]
        assert mine == ["b"]  # only "b" is reported created (mirrored to ClickHouse)
        assert person_count(app) == 2  # our person for "a" was deleted again
        assert partition(app) == {frozenset({"a"}), frozenset({"b"})}
