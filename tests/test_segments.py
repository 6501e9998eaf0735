"""Saved segments limit every report to their persons (dynamic filters or static id lists)."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_umetrics import UMetrics, identify, set_person_properties
from flask_umetrics.queries.active import active_users
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.segments import (
    count_segment_persons,
    delete_segment,
    list_segments,
    save_segment,
)
from flask_umetrics.queries.trends import volume

from .conftest import AppFactory, allow_all
from .events_data import at, load

pytestmark = pytest.mark.event_stores

ROWS = [
    ("alice", "view", "2026-03-01T10:00"),
    ("alice", "view", "2026-03-02T10:00"),
    ("bob", "view", "2026-03-01T11:00"),
    ("anon-7", "view", "2026-03-01T12:00"),
    ("carol", "view", "2026-03-02T12:00"),
]


def span(**kwargs: object):  # type: ignore[no-untyped-def]
    return report_context(date_from=at("2026-03-01"), date_to=at("2026-03-03"), **kwargs)


def test_dynamic_segment_follows_person_properties(app: Flask) -> None:
    load(app, ROWS)
    with app.app_context():
        set_person_properties("alice", set={"plan": "pro"})
        set_person_properties("bob", set={"plan": "free"})
        pro = save_segment("pro", filters=[{"key": "plan", "value": "pro"}])
        assert count_segment_persons(pro) == 1
        assert [p.count for p in volume(span(segment="pro")).series] == [1, 1]
        set_person_properties("carol", set={"plan": "pro"})  # evaluated when the report runs
        assert [p.count for p in volume(span(segment="pro")).series] == [1, 2]
        assert active_users(span(segment="pro")).count == 2


def test_static_segment_resolves_merges_at_report_time(app: Flask) -> None:
    load(app, ROWS)
    with app.app_context():
        save_segment("beta", distinct_ids=["carol", "dave"])
        assert [p.count for p in volume(span(segment="beta")).series] == [0, 1]
        identify("carol", anon_id="anon-7")  # carol's anonymous history joins the segment
        assert [p.count for p in volume(span(segment="beta")).series] == [1, 1]
        assert [s.key for s in list_segments()] == ["beta"]
        assert delete_segment("beta") is True and delete_segment("beta") is False


def test_segment_routes_and_report_parameter(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, ROWS)
    client = app.test_client()
    created = client.post(
        "/umetrics/api/segments", json={"key": "two", "distinct_ids": ["alice", "bob"]}
    )
    assert created.status_code == 201 and created.json["persons"] == 2
    assert client.get("/umetrics/api/segments/two").json["kind"] == "static"
    report = client.get(
        "/umetrics/api/query/volume?date_from=2026-03-01&date_to=2026-03-03&segment=two"
    ).json
    assert [p["count"] for p in report["series"]] == [2, 1]
    unknown = client.get("/umetrics/api/query/volume?segment=nope")
    assert unknown.status_code == 400 and "segment" in unknown.json["error"]["message"]
    both = client.post(
        "/umetrics/api/segments", json={"key": "x", "filters": [], "distinct_ids": ["a"]}
    )
    assert both.status_code == 400
    bad_filter = client.post(
        "/umetrics/api/segments", json={"key": "x", "filters": [{"key": "a", "op": "gt"}]}
    )
    assert bad_filter.status_code == 400 and "filters" in bad_filter.json["error"]["message"]
    assert client.delete("/umetrics/api/segments/two").json == {"key": "two", "deleted": True}
    assert client.get("/umetrics/api/segments/two").status_code == 404
