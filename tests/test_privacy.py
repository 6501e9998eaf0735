"""GDPR: delete, anonymise and export one person, over Python, REST and the CLI."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from flask_umetrics import create_api_key, identify, track
from flask_umetrics.db.tables import audit_log, metadata, person_distinct_ids, persons
from flask_umetrics.events.privacy import (
    PII_KEYS,
    anonymize_person,
    delete_person,
    export_person,
)
from flask_umetrics.queries.active import active_users
from flask_umetrics.queries.context import report_context
from flask_umetrics.state import current_state

from .events_data import at, load, stored_events

#: On the ClickHouse event store too: events (and the mirrored persons and map) live there, the
#: persons and their distinct ids stay in the SQL database.
pytestmark = pytest.mark.event_stores

#: Distinctive ids, so "appears nowhere" can be checked on the text of every row.
ANON = "anon-cookie-51f0c"
USER = "user-zelda-8842"
OTHER = "user-other-1177"
PII = {"$ip": "10.1.2.3", "email": "zelda@example.com", "name": "Zelda", "$user_agent": "Firefox"}
OTHER_PII = {"$ip": "10.9.9.9", "email": "other@example.com"}


def seed(app: Flask) -> None:
    """Zelda: 2 anonymous events, then 3 as a user, merged afterwards; another person: 2."""
    load(
        app,
        [
            (ANON, "view", "2026-03-01T10:00:00", {**PII, "path": "/"}),
            (ANON, "signup", "2026-03-01T10:05:00.000001", {"plan": "pro"}, None, "s1"),
            (USER, "view", "2026-03-02T09:00:00", {**PII, "path": "/app"}),
            (USER, "buy", "2026-03-02T09:00:00", {"amount": 9.5, "phone": "555"}, False),
            (USER, "view", "2026-03-03T08:00:00"),
            (OTHER, "view", "2026-03-01T11:00:00", {**OTHER_PII, "path": "/"}),
            (OTHER, "view", "2026-03-02T11:00:00"),
        ],
    )
    with app.app_context():
        identify(USER, anon_id=ANON, traits={"email": "zelda@example.com", "plan": "pro"})
        identify(OTHER, traits={"email": "other@example.com"})


def all_rows_text(app: Flask) -> str:
    """Every row of every table, in the SQL database and, on a ClickHouse event store, in
    ClickHouse (events, the mirrored persons and distinct-id map, every version of them)."""
    with app.app_context(), current_state().engine.connect() as connection:
        rows = [
            repr(tuple(row))
            for table in metadata.sorted_tables
            for row in connection.execute(select(table))
        ]
        store = current_state().event_store
        if store.name == "clickhouse":
            client = store.client  # type: ignore[attr-defined]
            for (table,) in client.query("SHOW TABLES LIKE 'umetrics%'").result_rows:
                result = client.query(f"SELECT * FROM {table}").result_rows
                rows += sorted(repr(row) for row in result)  # parts come back in any order
        return "\n".join(rows)


def event_count(app: Flask, distinct_id: str | None = None) -> int:
    """Stored events (of ``distinct_id``), counted in the store that holds them."""
    with app.app_context():
        return sum(1 for e in stored_events() if distinct_id in (None, e.distinct_id))


def count(app: Flask, query: Any) -> int:
    with app.app_context(), current_state().engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def person_of(app: Flask, distinct_id: str, scope_id: str = "default") -> int:
    query = select(person_distinct_ids.c.person_id).where(
        person_distinct_ids.c.scope_id == scope_id,
        person_distinct_ids.c.distinct_id == distinct_id,
    )
    return count(app, query)


def audit_rows(app: Flask) -> list[tuple[Any, ...]]:
    query = select(audit_log.c.action, audit_log.c.target, audit_log.c.before, audit_log.c.after)
    with app.app_context(), current_state().engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query.order_by(audit_log.c.id))]


def test_delete_removes_every_trace_of_a_merged_person(app: Flask) -> None:
    seed(app)
    zelda, other = person_of(app, USER), person_of(app, OTHER)
    with app.app_context():
        report = delete_person(ANON)  # either distinct id reaches the merged person
    assert (report.found, report.person_id) == (True, zelda)
    assert (report.persons, report.distinct_ids, report.events) == (1, 2, 5)
    text = all_rows_text(app)
    for secret in (ANON, USER, "zelda@example.com"):
        assert secret not in text
    assert count(app, select(func.count()).select_from(persons).where(persons.c.id == zelda)) == 0
    # The other person is intact.
    assert event_count(app) == event_count(app, OTHER) == 2
    assert count(app, select(func.count()).select_from(person_distinct_ids)) == 1
    assert person_of(app, OTHER) == other
    assert count(app, select(func.count()).select_from(persons)) == 1
    assert audit_rows(app) == [
        (
            "person.delete",
            f"person:{zelda}",
            {"distinct_ids": 2, "events": 5, "assignments": 0, "exposures": 0},
            None,
        )
    ]


def test_deleting_an_unknown_person_changes_nothing(app: Flask) -> None:
    seed(app)
    before = all_rows_text(app)
    with app.app_context():
        report = delete_person("nobody")
        again = delete_person(OTHER, scope_id="another-scope")
    assert report.found is False and again.found is False
    assert (report.person_id, report.persons, report.distinct_ids, report.events) == (
        None,
        0,
        0,
        0,
    )
    assert all_rows_text(app) == before


def test_delete_flushes_buffered_events_first(app: Flask) -> None:
    seed(app)
    with app.app_context():
        track("late", distinct_id=USER, timestamp=at("2026-03-04T00:00:00"))
        assert len(current_state().event_buffer) == 1
        report = delete_person(USER)
        assert report.events == 6
        assert len(current_state().event_buffer) == 0
    assert USER not in all_rows_text(app)


def test_anonymize_keeps_counts_and_removes_identity(app: Flask) -> None:
    seed(app)
    zelda = person_of(app, USER)
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-04"))
        active_before = active_users(ctx).count
        report = anonymize_person(USER)
        assert active_users(ctx).count == active_before == 2
    assert (report.found, report.person_id, report.distinct_ids, report.events) == (
        True,
        zelda,
        2,
        5,
    )
    text = all_rows_text(app)
    assert ANON not in text and USER not in text and "zelda@example.com" not in text
    assert event_count(app) == 7
    with app.app_context(), current_state().engine.connect() as connection:
        ids = connection.execute(
            select(person_distinct_ids.c.distinct_id).where(
                person_distinct_ids.c.person_id == zelda
            )
        ).scalars()
        new_ids = sorted(ids)
        person_props = connection.execute(
            select(persons.c.id, persons.c.properties).order_by(persons.c.id)
        ).all()
        stored = stored_events()
    rows = [e for e in stored if e.distinct_id in new_ids]
    other_props = [e.properties for e in stored if e.distinct_id == OTHER]
    assert len(new_ids) == 2 and all(i.startswith("anon-") and len(i) == 21 for i in new_ids)
    # The same old id always became the same new id: 2 events on one, 3 on the other.
    per_id = sorted(sum(1 for r in rows if r.distinct_id == i) for i in new_ids)
    assert per_id == [2, 3]
    assert [r.event for r in rows] == ["view", "signup", "view", "buy", "view"]
    assert [r.uuid for r in rows] == [f"anon-event-{r.id}" for r in rows]  # uuids embedded ids
    assert [r.properties for r in rows] == [
        {"path": "/"},
        {"plan": "pro"},
        {"path": "/app"},
        {"amount": 9.5},
        {},
    ]
    assert other_props == [{**OTHER_PII, "path": "/"}, {}]  # the other person keeps everything
    assert person_props == [(zelda, {}), (person_of(app, OTHER), {"email": "other@example.com"})]
    assert audit_rows(app) == [
        ("person.anonymize", f"person:{zelda}", None, {"distinct_ids": 2, "events": 5})
    ]
    with app.app_context():
        assert anonymize_person(USER).found is False  # the old id is gone
        assert set(PII_KEYS) >= set(PII)


def test_export_contains_everything_about_the_person(app: Flask) -> None:
    seed(app)
    zelda = person_of(app, USER)
    with app.app_context():
        document = export_person(ANON)
        assert export_person("nobody") is None
        assert export_person(USER) == document
    assert document is not None
    assert document["scope_id"] == "default"
    person = document["person"]
    assert person["id"] == zelda and person["is_identified"] is True
    assert person["properties"] == {"email": "zelda@example.com", "plan": "pro"}
    assert person["created_at"].endswith("Z")
    assert document["distinct_ids"] == sorted([ANON, USER])
    exported = document["events"]
    assert [(e["distinct_id"], e["event"], e["timestamp"]) for e in exported] == [
        (USER, "view", "2026-03-03T08:00:00.000000Z"),
        (USER, "buy", "2026-03-02T09:00:00.000000Z"),  # same instant: newest id first
        (USER, "view", "2026-03-02T09:00:00.000000Z"),
        (ANON, "signup", "2026-03-01T10:05:00.000001Z"),
        (ANON, "view", "2026-03-01T10:00:00.000000Z"),
    ]
    assert exported[1]["active"] is False and exported[1]["properties"] == {
        "amount": 9.5,
        "phone": "555",
    }
    assert exported[3]["session_id"] == "s1" and exported[4]["session_id"] is None
    assert exported[4]["uuid"] == f"default-0-{ANON}-view-2026-03-01T10:00:00"
    assert set(exported[0]) == {
        "uuid",
        "event",
        "distinct_id",
        "timestamp",
        "session_id",
        "active",
        "properties",
    }


def headers(app: Flask, permission: str) -> dict[str, str]:
    with app.app_context():
        return {"Authorization": f"Bearer {create_api_key('default', permission)}"}


def test_rest_routes_need_manage(app: Flask) -> None:
    seed(app)
    client = app.test_client()
    view = headers(app, "metrics.view")
    for method, path in [
        ("DELETE", f"/umetrics/api/persons/{USER}"),
        ("POST", f"/umetrics/api/persons/{USER}/anonymize"),
        ("GET", f"/umetrics/api/persons/{USER}/export"),
    ]:
        refused = client.open(path, method=method, headers=view)
        assert refused.status_code == 403, path
        assert refused.json["error"]["code"] == "insufficient_permission"
    assert event_count(app) == 7


def test_rest_export_delete_and_anonymize(app: Flask) -> None:
    seed(app)
    zelda = person_of(app, USER)
    client = app.test_client()
    manage = headers(app, "metrics.manage")
    exported = client.get(f"/umetrics/api/persons/{ANON}/export", headers=manage)
    assert exported.status_code == 200 and exported.mimetype == "application/json"
    assert exported.headers["Content-Disposition"] == f'attachment; filename="person-{zelda}.json"'
    assert len(exported.json["events"]) == 5
    assert exported.json["distinct_ids"] == sorted([ANON, USER])

    deleted = client.delete(f"/umetrics/api/persons/{USER}", headers=manage)
    assert deleted.status_code == 200
    assert deleted.json == {
        "found": True,
        "person_id": zelda,
        "persons": 1,
        "distinct_ids": 2,
        "events": 5,
        "assignments": 0,
        "exposures": 0,
    }
    for method, path in [
        ("DELETE", f"/umetrics/api/persons/{USER}"),
        ("POST", f"/umetrics/api/persons/{USER}/anonymize"),
        ("GET", f"/umetrics/api/persons/{USER}/export"),
    ]:
        missing = client.open(path, method=method, headers=manage)
        assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"

    anonymized = client.post(f"/umetrics/api/persons/{OTHER}/anonymize", headers=manage)
    assert anonymized.status_code == 200
    assert anonymized.json == {
        "found": True,
        "person_id": person_of(app, anonymized_id(app)),
        "distinct_ids": 1,
        "events": 2,
    }
    assert OTHER not in all_rows_text(app)
    assert event_count(app) == 2


def anonymized_id(app: Flask) -> str:
    with app.app_context(), current_state().engine.connect() as connection:
        return str(connection.execute(select(person_distinct_ids.c.distinct_id)).scalar_one())


def test_cli_forget_person(app: Flask) -> None:
    seed(app)
    runner = app.test_cli_runner()
    declined = runner.invoke(args=["umetrics", "forget-person", USER], input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert event_count(app) == 7
    zelda = person_of(app, USER)
    confirmed = runner.invoke(args=["umetrics", "forget-person", USER], input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert f"deleted person {zelda}: 2 distinct ids, 5 events" in confirmed.output
    anonymized = runner.invoke(args=["umetrics", "forget-person", OTHER, "--anonymize", "--yes"])
    assert anonymized.exit_code == 0, anonymized.output
    assert "1 distinct ids replaced, 2 events rewritten" in anonymized.output
    assert OTHER not in all_rows_text(app) and USER not in all_rows_text(app)
    unknown = runner.invoke(args=["umetrics", "forget-person", "nobody", "--yes"])
    assert unknown.exit_code == 1 and "no person with distinct id 'nobody'" in unknown.output
    bad_scope = runner.invoke(args=["umetrics", "forget-person", "x", "--scope", "bad scope"])
    assert bad_scope.exit_code == 1 and "scope_id" in bad_scope.output


def test_operations_stay_in_their_scope(app: Flask) -> None:
    seed(app)
    zelda = person_of(app, USER)
    load(app, [(USER, "view", "2026-03-05T00:00:00")], scope_id="tenant-b")
    with app.app_context():
        assert export_person(USER, scope_id="tenant-b")["distinct_ids"] == [USER]  # type: ignore[index]
        assert delete_person(USER, scope_id="tenant-b").events == 1
    assert event_count(app) == 7
    assert person_of(app, USER) == zelda


def test_static_segments_forget_deleted_and_follow_anonymised_persons(app: Flask) -> None:
    from sqlalchemy import select

    from flask_umetrics.db.tables import segment_members
    from flask_umetrics.queries.segments import count_segment_persons, save_segment
    from flask_umetrics.state import current_state

    from .events_data import load

    load(app, [("gone", "view", "2026-03-01T10:00"), ("kept", "view", "2026-03-01T11:00")])
    with app.app_context():
        segment = save_segment("vip", distinct_ids=["gone", "kept"])
        delete_person("gone")
        anonymize_person("kept")
        with current_state().engine.connect() as connection:
            members = connection.execute(select(segment_members.c.distinct_id)).scalars().all()
        assert len(members) == 1 and members[0].startswith("anon-")
        assert count_segment_persons(segment) == 1
