"""Persons and the distinct-id map mirrored into ClickHouse: merges re-group past events through
the versioned map (no event rewritten), properties follow, delete and anonymise reach the events."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask

from flask_umetrics import identify, set_person_properties, track
from flask_umetrics.engines.clickhouse.client import get_client, parse_clickhouse_url
from flask_umetrics.events.privacy import PII_KEYS, anonymize_person, delete_person

from .conftest import AppFactory

BASE = datetime.now(timezone.utc) - timedelta(hours=2)

#: Events per person key through the latest mapping: ReplacingMergeTree rows read with argMax.
EVENTS_BY_PERSON = """
SELECT m.person_id, count() AS n, groupArray(e.distinct_id) AS ids
FROM umetrics_events AS e
INNER JOIN (
    SELECT distinct_id, argMax(person_id, version) AS person_id,
           argMax(is_deleted, version) AS deleted
    FROM umetrics_person_distinct_ids WHERE scope_id = 'default'
    GROUP BY distinct_id
) AS m ON m.distinct_id = e.distinct_id
WHERE e.scope_id = 'default' AND m.deleted = 0
GROUP BY m.person_id ORDER BY m.person_id
"""
LATEST_PERSONS = """
SELECT id, argMax(properties, version), argMax(is_identified, version),
       argMax(is_deleted, version)
FROM umetrics_persons WHERE scope_id = 'default' GROUP BY id ORDER BY id
"""


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    client = get_client(parse_clickhouse_url(url))
    return [tuple(row) for row in client.query(sql).result_rows]


def grouped(url: str) -> list[tuple[int, int, list[str]]]:
    return [(p, n, sorted(ids)) for p, n, ids in rows(url, EVENTS_BY_PERSON)]


@pytest.fixture
def app(make_clickhouse_app: AppFactory) -> Flask:
    return make_clickhouse_app(UMETRICS_TRACK_SYNC=True)


def _events(distinct_id: str, count: int, **properties: Any) -> list[str]:
    return [
        track(
            "viewed",
            distinct_id=distinct_id,
            timestamp=BASE + timedelta(minutes=i),
            properties=properties,
        )
        for i in range(count)
    ]


def test_a_merge_after_the_events_regroups_them_by_person(app: Flask, clickhouse_url: str) -> None:
    with app.app_context():
        _events("anon-1", 3)
        _events("user-1", 2)
        _events("other", 1)
    before = grouped(clickhouse_url)
    assert [(n, ids) for _, n, ids in before] == [
        (3, ["anon-1"] * 3),
        (2, ["user-1"] * 2),
        (1, ["other"]),
    ]
    user_person = before[1][0]
    anon_person = before[0][0]
    with app.app_context():
        assert identify("user-1", anon_id="anon-1", traits={"plan": "pro"}) == user_person
    after = grouped(clickhouse_url)
    assert after == [
        (user_person, 5, ["anon-1"] * 3 + ["user-1"] * 2),
        (before[2][0], 1, ["other"]),
    ]
    assert rows(clickhouse_url, "SELECT count() FROM umetrics_events") == [(6,)]  # none rewritten
    persons = {p[0]: p[1:] for p in rows(clickhouse_url, LATEST_PERSONS)}
    assert persons[user_person] == ('{"plan":"pro"}', True, 0)
    assert persons[anon_person][2] == 1  # merged away
    # FINAL gives the same latest state once the replacing engine applies it.
    final = rows(
        clickhouse_url,
        "SELECT distinct_id, person_id FROM umetrics_person_distinct_ids FINAL "
        "WHERE is_deleted = 0 ORDER BY distinct_id",
    )
    assert final == [("anon-1", user_person), ("other", before[2][0]), ("user-1", user_person)]


def test_identify_before_any_event_and_property_changes_are_mirrored(
    app: Flask, clickhouse_url: str
) -> None:
    with app.app_context():
        person = identify("u", anon_id="a", traits={"name": "Ann"})
        set_person_properties("a", set={"plan": "free"}, set_once={"name": "ignored", "src": "x"})
        _events("a", 2)
        _events("u", 1)
    assert grouped(clickhouse_url) == [(person, 3, ["a", "a", "u"])]
    everyone = rows(clickhouse_url, LATEST_PERSONS)
    assert [p[3] for p in everyone].count(1) == 1  # the person "a" had first was merged away
    (latest,) = [p for p in everyone if p[3] == 0]
    assert latest[0] == person
    assert json.loads(latest[1]) == {"name": "Ann", "plan": "free", "src": "x"}
    assert latest[2:] == (True, 0)


def test_deleting_a_person_removes_their_events_from_clickhouse(
    app: Flask, clickhouse_url: str
) -> None:
    with app.app_context():
        _events("anon-2", 2)
        _events("user-2", 3)
        _events("keep", 4)
        identify("user-2", anon_id="anon-2")
        report = delete_person("anon-2")
    assert (report.found, report.persons, report.distinct_ids, report.events) == (True, 1, 2, 5)
    assert rows(clickhouse_url, "SELECT distinct_id, count() FROM umetrics_events GROUP BY 1") == [
        ("keep", 4)
    ]
    assert [(n, ids) for _, n, ids in grouped(clickhouse_url)] == [(4, ["keep"] * 4)]
    persons = {p[0]: p[3] for p in rows(clickhouse_url, LATEST_PERSONS)}
    assert persons[report.person_id] == 1
    # No row of the deleted ids is left in the map (an id with no row maps to no person).
    gone = rows(
        clickhouse_url,
        "SELECT distinct_id FROM umetrics_person_distinct_ids "
        "WHERE distinct_id IN ('anon-2', 'user-2')",
    )
    assert gone == []


def test_anonymising_a_person_rewrites_their_events_in_clickhouse(
    app: Flask, clickhouse_url: str
) -> None:
    with app.app_context():
        _events("anon-3", 2, email="a@example.com", colour="red", **{"$ip": "10.0.0.1"})
        _events("user-3", 1, name="Ann", colour="blue")
        _events("keep", 1, email="k@example.com")
        person = identify("user-3", anon_id="anon-3", traits={"email": "a@example.com"})
        report = anonymize_person("user-3")
    assert (report.found, report.person_id, report.distinct_ids, report.events) == (
        True,
        person,
        2,
        3,
    )
    stored = rows(
        clickhouse_url,
        "SELECT distinct_id, uuid, toString(seq), properties FROM umetrics_events "
        "WHERE distinct_id != 'keep' ORDER BY seq",
    )
    assert len(stored) == 3
    new_ids = {row[0] for row in stored}
    assert len(new_ids) == 2 and all(d.startswith("anon-") and len(d) == 21 for d in new_ids)
    assert not new_ids & {"anon-3", "user-3"}
    assert all(uuid == f"anon-event-{seq}" for _, uuid, seq, _ in stored)
    assert [json.loads(p) for *_, p in stored] == [{"colour": "red"}] * 2 + [{"colour": "blue"}]
    assert not set(PII_KEYS) & {k for *_, p in stored for k in json.loads(p)}
    # The untouched person keeps everything; the anonymised one is still one person.
    assert rows(
        clickhouse_url, "SELECT properties FROM umetrics_events WHERE distinct_id = 'keep'"
    ) == [('{"email":"k@example.com"}',)]
    by_person = grouped(clickhouse_url)
    assert sorted(n for _, n, _ in by_person) == [1, 3]
    assert (person, 3) in [(p, n) for p, n, _ in by_person]
    (mirrored,) = [p for p in rows(clickhouse_url, LATEST_PERSONS) if p[0] == person]
    assert mirrored[1:] == ("{}", True, 0)


def test_a_merge_clickhouse_cannot_mirror_is_rolled_back_in_sql(
    app: Flask, clickhouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQL and ClickHouse never disagree silently: the mirror runs inside the SQL transaction,
    so when ClickHouse is unreachable the merge fails as a whole (REST: 503) and can be retried."""
    from clickhouse_connect.driver.exceptions import OperationalError

    from flask_umetrics.engines.clickhouse import store as store_module
    from flask_umetrics.errors import EventStoreUnavailable

    with app.app_context():
        _events("anon-4", 1)
        _events("user-4", 1)
    before = grouped(clickhouse_url)
    ch_client = get_client(parse_clickhouse_url(clickhouse_url))
    real_insert = ch_client.insert

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(store_module.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(ch_client, "insert", unreachable)
    with app.app_context(), pytest.raises(EventStoreUnavailable, match="mirror persons"):
        identify("user-4", anon_id="anon-4")
    assert grouped(clickhouse_url) == before
    monkeypatch.setattr(ch_client, "insert", real_insert)
    with app.app_context():
        from flask_umetrics.events.identity import person_ids_of
        from flask_umetrics.state import current_state

        with current_state().engine.connect() as connection:
            ids = person_ids_of(connection, "default", ["anon-4", "user-4"])
        assert ids["anon-4"] != ids["user-4"]  # the merge was rolled back in SQL too
        person = identify("user-4", anon_id="anon-4")
    assert grouped(clickhouse_url) == [(person, 2, ["anon-4", "user-4"])]


def test_links_made_in_one_transaction_are_all_mirrored(app: Flask, clickhouse_url: str) -> None:
    """``link_anonymous_ids`` (the togo API's batch of links) goes through the same mirror."""
    from flask_umetrics.events.identity import link_anonymous_ids

    with app.app_context():
        _events("a1", 1)
        _events("a2", 2)
        _events("u", 1)
        link_anonymous_ids([("u", "a1"), ("u", "a2")])
    (only,) = grouped(clickhouse_url)
    assert only[1:] == (4, ["a1", "a2", "a2", "u"])
