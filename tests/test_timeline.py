"""Timeline: merged ids, newest first, keyset pages across equal timestamps, sessions, 404."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_umetrics import APIError, UMetrics, ValidationError, identify, set_person_properties
from flask_umetrics.queries.timeline import timeline

from .conftest import AppFactory, allow_all
from .events_data import load

pytestmark = pytest.mark.event_stores

SAME = "2026-03-01T10:05:00"
ROWS = [
    ("anon", "$pageview", "2026-03-01T10:00:00", {"path": "/"}),
    ("anon", "a", SAME),
    ("user", "b", SAME, None, None, "s-1"),
    ("anon", "c", SAME),
    ("user", "d", SAME, None, False),
    ("user", "e", SAME),
    ("other", "x", SAME),  # someone else
    ("user", "f", "2026-03-02T08:00:00"),
]


def uuid(index: int) -> str:
    distinct_id, event, when, *_ = ROWS[index]
    return f"default-{index}-{distinct_id}-{event}-{when}"


def setup(app: Flask) -> None:
    load(app, ROWS)
    with app.app_context():
        identify("user", anon_id="anon", traits={"plan": "pro"})
        set_person_properties("anon", set_once={"plan": "free", "source": "ads"})


def test_a_timeline_pages_through_equal_timestamps_without_loss(app: Flask) -> None:
    setup(app)
    seen: list[str] = []
    pages = 0
    cursor = None
    with app.app_context():
        while True:
            page = timeline("anon", limit=2, before=cursor)
            seen += [event.uuid or "" for event in page.events]
            pages += 1
            cursor = page.next
            if cursor is None:
                break
    # Newest first; the five events at one instant in reverse order of storage.
    assert seen == [uuid(i) for i in (7, 5, 4, 3, 2, 1, 0)]
    assert pages == 4


def test_a_timeline_page(app: Flask) -> None:
    setup(app)
    with app.app_context():
        first = timeline("user", limit=3)
        assert first.person.distinct_ids == ["anon", "user"]
        assert first.person.properties == {"plan": "pro", "source": "ads"}
        assert [e.event for e in first.events] == ["f", "e", "d"]
        assert first.events[0].timestamp == "2026-03-02T08:00:00+00:00"
        assert first.events[2].active is False
        assert [(s.start, s.events, s.session_id) for s in first.sessions] == [
            ("2026-03-02T08:00:00+00:00", 1, None),
            ("2026-03-01T10:05:00+00:00", 1, "s-1"),
            ("2026-03-01T10:00:00+00:00", 4, None),  # $pageview, a, c, e (d is inactive)
        ]
        rest = timeline("anon", limit=10, before=first.next)
        assert [e.event for e in rest.events] == ["c", "b", "a", "$pageview"]
        assert rest.events[1].session_id == "s-1" and rest.events[1].distinct_id == "user"
        assert rest.events[3].properties == {"path": "/"}
        assert rest.next is None
        # Sessions that started by the cursor (10:05): the 08:00 one is left out.
        assert [s.start[:16] for s in rest.sessions] == ["2026-03-01T10:05", "2026-03-01T10:00"]
        assert timeline("user", limit=8).next is None  # exactly one page


def test_unknown_person_and_bad_arguments(app: Flask) -> None:
    setup(app)
    with app.app_context():
        with pytest.raises(APIError) as error:
            timeline("nobody")
        assert error.value.status == 404 and error.value.code == "not_found"
        with pytest.raises(ValidationError, match="before"):
            timeline("user", before="not a cursor!")
        with pytest.raises(ValidationError, match="limit"):
            timeline("user", limit=0)
        with pytest.raises(APIError):
            timeline("user", scope_id="elsewhere")


def test_timeline_route(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    setup(app)
    load(app, [("a/b@example.com", "hello", "2026-03-01T09:00")])
    client = app.test_client()
    answer = client.get("/umetrics/api/persons/user/timeline?limit=1").json
    assert set(answer) == {"person", "events", "next", "sessions"}
    assert set(answer["person"]) == {"id", "distinct_ids", "properties", "created_at"}
    assert answer["events"] == [
        {
            "uuid": uuid(7),
            "event": "f",
            "distinct_id": "user",
            "timestamp": "2026-03-02T08:00:00+00:00",
            "session_id": None,
            "properties": {},
            "active": True,
        }
    ]
    assert answer["sessions"][0] == {
        "start": "2026-03-02T08:00:00+00:00",
        "end": "2026-03-02T08:00:00+00:00",
        "duration": 0.0,
        "events": 1,
        "session_id": None,
        "properties": {},
    }
    following = client.get(f"/umetrics/api/persons/anon/timeline?before={answer['next']}").json
    assert len(following["events"]) == 6 and following["next"] is None
    slash = client.get("/umetrics/api/persons/a/b@example.com/timeline").json
    assert [e["event"] for e in slash["events"]] == ["hello"]
    missing = client.get("/umetrics/api/persons/nobody/timeline")
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"
    assert client.get("/umetrics/api/persons/user/timeline?before=zz").status_code == 400
    assert client.get("/umetrics/api/persons/user/timeline?limit=0").status_code == 400
