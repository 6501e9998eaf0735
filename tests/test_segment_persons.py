"""The persons of a saved segment (``/api/query/segment/persons``): the list's total is the
segment's person count, on every event store."""

from __future__ import annotations

import csv
import io

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_umetrics import UMetrics, identify, set_person_properties
from flask_umetrics.queries.segments import count_segment_persons, save_segment

from .admin_html import table_cells
from .conftest import AppFactory, allow_all
from .events_data import load

pytestmark = pytest.mark.event_stores

URL = "/umetrics/api/query/segment/persons"
ROWS = [
    ("alice", "view", "2026-03-01T10:00"),
    ("bob", "view", "2026-03-01T11:00"),
    ("anon-7", "view", "2026-03-01T12:00"),
    ("carol", "view", "2026-03-02T12:00"),
    ("dan", "view", "2026-03-02T13:00"),
]


def _client(make_app: AppFactory) -> tuple[Flask, FlaskClient]:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, ROWS)
    with app.app_context():
        identify("carol", anon_id="anon-7")
        for who in ("alice", "carol", "dan"):
            set_person_properties(who, set={"plan": "pro"})
        set_person_properties("bob", set={"plan": "free"})
    return app, app.test_client()


def _walk(client: FlaskClient, key: str) -> list[list[str]]:
    """Every person of the segment, two a page, by their distinct ids."""
    found: list[list[str]] = []
    offset = 0
    while True:
        body = client.get(f"{URL}?segment={key}&limit=2&offset={offset}").json
        assert body["limit"] == 2 and body["offset"] == offset
        assert len(body["persons"]) == min(2, body["total"] - offset)
        found += [sorted(p["distinct_ids"]) for p in body["persons"]]
        offset += 2
        if offset >= body["total"]:
            assert len(found) == body["total"]
            return found


def test_the_list_is_the_segment_count(make_app: AppFactory) -> None:
    app, client = _client(make_app)
    with app.app_context():
        beta = save_segment("beta", distinct_ids=["anon-7", "bob", "nobody"])
        pro = save_segment("pro", filters=[{"key": "plan", "value": "pro"}])
        counts = {"beta": count_segment_persons(beta), "pro": count_segment_persons(pro)}
    assert counts == {"beta": 2, "pro": 3}
    # Static: anon-7 brings carol (merged); "nobody" never came.
    assert sorted(_walk(client, "beta")) == [["anon-7", "carol"], ["bob"]]
    pro_persons = _walk(client, "pro")
    assert sorted(pro_persons) == [["alice"], ["anon-7", "carol"], ["dan"]]
    body = client.get(f"{URL}?segment=pro").json
    assert body["total"] == counts["pro"] and body["limit"] == 50 and body["offset"] == 0
    assert [p["properties"]["plan"] for p in body["persons"]] == ["pro"] * 3
    assert [p["id"] for p in body["persons"]] == sorted(p["id"] for p in body["persons"])
    assert all(p["qualified_at"] is None for p in body["persons"])
    assert client.get(f"{URL}?segment=pro&offset=3").json["persons"] == []


def test_csv_by_format_or_accept(make_app: AppFactory) -> None:
    app, client = _client(make_app)
    with app.app_context():
        save_segment("pro", filters=[{"key": "plan", "value": "pro"}])
    for answer in [
        client.get(f"{URL}?segment=pro&format=csv"),
        client.get(f"{URL}?segment=pro", headers={"Accept": "text/csv"}),
    ]:
        assert answer.status_code == 200
        assert answer.content_type.startswith("text/csv")
        assert answer.headers["X-Total-Count"] == "3"
        rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
        assert sorted(r["distinct_ids"].split()[0] for r in rows) == ["alice", "anon-7", "dan"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("", "segment"),
        ("segment=", "segment"),
        ("segment=pro&limit=0", "limit"),
        ("segment=pro&offset=-1", "offset"),
        ("segment=pro&format=xml", "format"),
    ],
)
def test_bad_input_names_the_field(make_app: AppFactory, extra: str, field: str) -> None:
    _, client = _client(make_app)
    answer = client.get(f"{URL}?{extra}")
    assert answer.status_code == 400, answer.json
    assert field in answer.json["error"]["message"], answer.json


def test_another_scopes_segment_is_not_found(make_app: AppFactory) -> None:
    app, client = _client(make_app)
    with app.app_context():
        save_segment("pro", filters=[{"key": "plan", "value": "pro"}], scope_id="site-b")
    answer = client.get(f"{URL}?segment=pro")
    assert answer.status_code == 404 and answer.json["error"]["code"] == "not_found"
    assert client.get(f"{URL}?segment=pro&scope_id=site-b").json["total"] == 0


def test_the_dashboard_lists_a_segments_persons(make_app: AppFactory) -> None:
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: permission == "metrics.view")
    extension.subject_loader(lambda: ("viewer", {}))
    app = make_app(extension, SECRET_KEY="test-secret")
    load(app, ROWS)
    with app.app_context():
        save_segment("beta", distinct_ids=["alice", "bob"])
    page = app.test_client().get("/umetrics/admin/persons-behind/segment?segment=beta")
    assert page.status_code == 200
    assert "Persons of the segment beta" in page.text
    rows = table_cells(page.text, "persons-behind")
    assert sorted(row[0] for row in rows if len(row) > 1) == ["alice", "bob"]
