"""One person's data, seen three ways: the timeline, the GDPR export, and after deletion."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from sqlalchemy import or_, select

from flask_umetrics import delete_person, export_person, identify, set_person_properties
from flask_umetrics.db.tables import metadata
from flask_umetrics.queries.timeline import timeline
from flask_umetrics.state import current_state

from .events_data import load


def _key(event: dict) -> tuple:  # type: ignore[type-arg]
    moment = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    return (
        event["uuid"],
        event["event"],
        event["distinct_id"],
        moment,
        event["session_id"],
        event["active"],
        tuple(sorted(event["properties"].items())),
    )


def test_export_contains_everything_the_timeline_shows(app: Flask) -> None:
    load(
        app,
        [
            ("anon-9", "view", "2026-03-01T10:00", {"path": "/"}, None, "s-1"),
            ("anon-9", "view", "2026-03-01T10:00", {"path": "/pricing"}, None, "s-1"),  # same time
            ("user-9", "signed_up", "2026-03-01T10:05", {"plan": "free"}),
            ("user-9", "email_sent", "2026-03-02T08:00", None, False),
            ("other", "view", "2026-03-01T10:00"),
        ]
        + [("user-9", "note_created", f"2026-03-03T10:{m:02d}", {"n": m}) for m in range(7)],
    )
    with app.app_context():
        identify("user-9", anon_id="anon-9")
        set_person_properties("user-9", set={"plan": "pro"})
        shown, cursor = [], None
        while True:  # every page of the timeline, 3 events at a time
            page = timeline("anon-9", limit=3, before=cursor)
            shown += [event.__dict__ for event in page.events]
            cursor = page.next
            if cursor is None:
                break
        exported = export_person("user-9")
        assert exported is not None
        assert len(shown) == 11
        assert {_key(e) for e in shown} <= {_key(e) for e in exported["events"]}
        assert len(exported["events"]) == len(shown)
        assert sorted(exported["distinct_ids"]) == sorted(page.person.distinct_ids)
        assert exported["person"]["properties"] == page.person.properties == {"plan": "pro"}


def test_after_delete_no_table_holds_the_persons_ids_or_events(app: Flask) -> None:
    load(
        app,
        [
            ("anon-1", "view", "2026-03-01T10:00", {"ref": "anon-1"}),
            ("user-1", "buy", "2026-03-01T11:00"),
            ("someone-else", "view", "2026-03-01T12:00"),
        ],
    )
    with app.app_context():
        identify("user-1", anon_id="anon-1")
        report = delete_person("anon-1")
        assert report.found
        with current_state().engine.connect() as connection:
            for table in metadata.sorted_tables:
                text_columns = [
                    c
                    for c in table.columns
                    if c.name in {"distinct_id", "anon_id", "subject_id", "target"}
                ]
                for column in text_columns:
                    rows = connection.execute(
                        select(column).where(or_(column == "anon-1", column == "user-1"))
                    ).all()
                    assert rows == [], (table.name, column.name)
            remaining = (
                connection.execute(select(metadata.tables["umetrics_events"].c.distinct_id))
                .scalars()
                .all()
            )
        assert remaining == ["someone-else"]
