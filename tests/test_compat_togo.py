"""togo analytics' REST shapes under /umetrics/api/analytics/...: ingestion, reports, auth."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_umetrics import create_api_key
from flask_umetrics.db.tables import events, persons
from flask_umetrics.state import current_state

from .conftest import AppFactory

BASE = "/umetrics/api/analytics"
EVENTS = [
    {"name": "visit", "anon_id": "a1", "timestamp": "2026-03-02T10:00:00Z"},
    # Both ids: stored under the user, and the anonymous past merges into it.
    {"name": "signup", "user_id": "u1", "anon_id": "a1", "timestamp": "2026-03-02T10:05:00Z"},
    {
        "name": "buy",
        "user_id": "u1",
        "timestamp": "2026-03-02T10:10:00Z",
        "properties": {"plan": "pro"},
    },
    {"name": "visit", "user_id": "u2", "timestamp": "2026-03-02T11:00:00Z"},
    {"name": "signup", "user_id": "u2", "timestamp": "2026-03-02T11:30:00Z"},
    {"name": "visit", "user_id": "u3", "timestamp": "2026-03-02T12:00:00Z"},
    {"name": "visit", "user_id": "u1", "timestamp": "2026-03-03T09:00:00Z"},
    {"name": "visit", "user_id": "u3", "timestamp": "2026-03-03T09:00:00Z"},
    {
        "name": "buy",
        "user_id": "u2",
        "timestamp": "2026-03-04T08:00:00Z",
        "properties": {"plan": "free"},
    },
    {"name": "visit", "user_id": "u4", "timestamp": "2026-03-04T08:00:00Z"},
    {"name": "email_sent", "user_id": "bot", "timestamp": "2026-03-04T09:00:00Z", "active": False},
]


@pytest.fixture
def togo(make_app: AppFactory) -> tuple[Flask, dict[str, str]]:
    app = make_app(UMETRICS_ENABLE_TOGO_API=True, UMETRICS_MAX_EVENT_AGE_DAYS=0)
    with app.app_context():
        keys = {
            "write": create_api_key("default", "ingest"),
            "read": create_api_key("default", "metrics.view"),
            "other": create_api_key("other", "metrics.manage"),
        }
    return app, keys


@pytest.fixture
def loaded(togo: tuple[Flask, dict[str, str]]) -> tuple[FlaskClient, dict[str, str]]:
    app, keys = togo
    client = app.test_client()
    answer = client.post(
        f"{BASE}/events", json={"events": EVENTS}, headers={"X-UMetrics-Key": keys["write"]}
    )
    assert answer.status_code == 200, answer.json
    assert answer.json == {"accepted": len(EVENTS), "duplicates": 0, "rejected": []}
    return client, keys


def get(client: FlaskClient, keys: dict[str, str], path: str, **params: Any) -> Any:
    answer = client.get(
        f"{BASE}/{path}", query_string=params, headers={"Authorization": f"Bearer {keys['read']}"}
    )
    assert answer.status_code == 200, answer.json
    return answer.json


def test_volume_is_a_zero_filled_series(loaded: tuple[FlaskClient, dict[str, str]]) -> None:
    client, keys = loaded
    series = get(client, keys, "volume", **{"from": "2026-03-02", "to": "2026-03-06"})
    assert series == [
        {"time": "2026-03-02T00:00:00+00:00", "count": 6},
        {"time": "2026-03-03T00:00:00+00:00", "count": 2},
        {"time": "2026-03-04T00:00:00+00:00", "count": 3},  # inactive events still count
        {"time": "2026-03-05T00:00:00+00:00", "count": 0},
    ]
    visits = get(
        client, keys, "volume", event="visit", **{"from": "2026-03-02", "to": "2026-03-04"}
    )
    assert [p["count"] for p in visits] == [3, 2]
    hours = get(
        client,
        keys,
        "volume",
        bucket="hour",
        **{"from": "2026-03-02T10:00:00Z", "to": "2026-03-02T12:00:00Z"},
    )
    assert hours == [
        {"time": "2026-03-02T10:00:00+00:00", "count": 3},
        {"time": "2026-03-02T11:00:00+00:00", "count": 2},
    ]


def test_top_events_and_property_values(loaded: tuple[FlaskClient, dict[str, str]]) -> None:
    client, keys = loaded
    window = {"from": "2026-03-02", "to": "2026-03-09"}
    assert get(client, keys, "top", **window) == [
        {"key": "visit", "count": 6},
        {"key": "buy", "count": 2},  # ties by name
        {"key": "signup", "count": 2},
        {"key": "email_sent", "count": 1},
    ]
    assert get(client, keys, "top", limit=1, **window) == [{"key": "visit", "count": 6}]
    assert get(client, keys, "top", event="buy", property="plan", **window) == [
        {"key": "free", "count": 1},
        {"key": "pro", "count": 1},
    ]


def test_active_users_count_merged_persons(loaded: tuple[FlaskClient, dict[str, str]]) -> None:
    client, keys = loaded
    # a1 and u1 are one person; the bot's only event is inactive.
    assert get(client, keys, "active", **{"from": "2026-03-02", "to": "2026-03-05"}) == 4
    assert get(client, keys, "active", **{"from": "2026-03-03", "to": "2026-03-04"}) == 2


def test_funnel_steps_with_conversion(loaded: tuple[FlaskClient, dict[str, str]]) -> None:
    client, keys = loaded
    answer = client.get(
        f"{BASE}/funnel?step=visit&step=signup&step=buy&from=2026-03-02&to=2026-03-09",
        headers={"Authorization": f"Bearer {keys['read']}"},
    )
    assert answer.status_code == 200, answer.json
    # u1's visit was made as a1 before signing up: it counts once merged.
    assert answer.json == [
        {"event": "visit", "count": 4, "conversion": 1.0},
        {"event": "signup", "count": 2, "conversion": 0.5},
        {"event": "buy", "count": 2, "conversion": 0.5},
    ]


def test_retention_of_the_first_seen_day(loaded: tuple[FlaskClient, dict[str, str]]) -> None:
    client, keys = loaded
    rows = get(client, keys, "retention", offsets="0,1,2", **{"from": "2026-03-02"})
    assert rows == [
        {"offset_days": 0, "returned": 3},
        {"offset_days": 1, "returned": 2},
        {"offset_days": 2, "returned": 1},
    ]
    repeated = client.get(
        f"{BASE}/retention?from=2026-03-02&offset=2&offset=0",
        headers={"Authorization": f"Bearer {keys['read']}"},
    ).json
    assert [(r["offset_days"], r["returned"]) for r in repeated] == [(0, 3), (2, 1)]


def test_dashboard_summary(loaded: tuple[FlaskClient, dict[str, str]]) -> None:
    client, keys = loaded
    summary = get(client, keys, "dashboard", days=3, to="2026-03-05")
    assert summary == {
        "total_events": 11,
        "dau": 2,  # 4 March: u2 and u4 (the bot is inactive)
        "wau": 4,
        "top_events": [
            {"key": "visit", "count": 6},
            {"key": "buy", "count": 2},
            {"key": "signup", "count": 2},
            {"key": "email_sent", "count": 1},
        ],
    }


def test_identify_merges_and_sets_traits(togo: tuple[Flask, dict[str, str]]) -> None:
    app, keys = togo
    client = app.test_client()
    write = {"X-UMetrics-Key": keys["write"]}
    client.post(
        f"{BASE}/events",
        json={
            "events": [{"name": "visit", "anon_id": "anon", "timestamp": "2026-03-02T10:00:00Z"}]
        },
        headers=write,
    )
    answer = client.post(
        f"{BASE}/identify",
        json={"user_id": "u9", "anon_id": "anon", "traits": {"country": "EG"}},
        headers=write,
    )
    assert answer.status_code == 200 and answer.json == {"user_id": "u9", "merged": True}
    plain = client.post(
        f"{BASE}/identify", json={"user_id": "u8", "traits": {"a": 1}}, headers=write
    )
    assert plain.json == {"user_id": "u8", "merged": False}
    with app.app_context(), current_state().engine.connect() as connection:
        props = sorted(str(p) for p in connection.execute(select(persons.c.properties)).scalars())
    assert props == ["{'a': 1}", "{'country': 'EG'}"]


def test_bad_events_are_rejected_by_index_and_the_rest_stored(
    togo: tuple[Flask, dict[str, str]],
) -> None:
    app, keys = togo
    client = app.test_client()
    batch = [
        {"name": "ok", "user_id": "u1", "timestamp": "2026-03-02T10:00:00Z", "uuid": "e-1"},
        {"name": "no-id", "timestamp": "2026-03-02T10:00:00Z"},
        {"name": "x", "user_id": "u1", "colour": "red"},
        {"user_id": "u1"},
        {"name": "late", "user_id": "u1", "timestamp": "yesterday"},
        "not an object",
        {"name": "zero-time", "user_id": "u1", "timestamp": "0001-01-01T00:00:00Z"},
    ]
    answer = client.post(f"{BASE}/events", json={"events": batch, "api_key": keys["write"]})
    assert answer.status_code == 200
    assert answer.json["accepted"] == 2
    assert [(r["index"], r["field"]) for r in answer.json["rejected"]] == [
        (1, "user_id"),
        (2, "colour"),
        (3, "name"),
        (4, "timestamp"),
        (5, "event"),
    ]
    again = client.post(
        f"{BASE}/events", json={"events": batch[:1]}, headers={"X-UMetrics-Key": keys["write"]}
    )
    assert again.json == {"accepted": 0, "duplicates": 1, "rejected": []}
    with app.app_context(), current_state().engine.connect() as connection:
        stored = dict(connection.execute(select(events.c.event, events.c.ts)).all())
    assert set(stored) == {"ok", "zero-time"}
    assert stored["zero-time"] > stored["ok"]  # Go's zero time means "now"


@pytest.mark.parametrize(
    ("method", "path", "params", "field"),
    [
        ("GET", "volume", {"bucket": "minute"}, "bucket"),
        ("GET", "volume", {"from": "soon"}, "from"),
        ("GET", "volume", {"from": "2026-03-05", "to": "2026-03-01"}, "date_from"),
        ("GET", "top", {"property": "plan"}, "event"),
        ("GET", "top", {"limit": "0"}, "limit"),
        ("GET", "funnel", {}, "step"),
        ("GET", "funnel", {"step": "a", "window": "-1"}, "window"),
        ("GET", "retention", {"offsets": "0,x"}, "offsets"),
        ("GET", "retention", {"offsets": "-1"}, "offsets"),
        ("GET", "dashboard", {"days": "0"}, "days"),
        ("POST", "events", {"events": "nope"}, "events"),
        ("POST", "events", {}, "events"),
        ("POST", "identify", {"traits": {}}, "user_id"),
        ("POST", "identify", {"user_id": "u", "traits": "x"}, "traits"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    togo: tuple[Flask, dict[str, str]], method: str, path: str, params: dict[str, Any], field: str
) -> None:
    app, keys = togo
    client = app.test_client()
    if method == "GET":
        answer = client.get(
            f"{BASE}/{path}",
            query_string=params,
            headers={"Authorization": f"Bearer {keys['read']}"},
        )
    else:
        answer = client.post(
            f"{BASE}/{path}", json=params, headers={"X-UMetrics-Key": keys["write"]}
        )
    assert answer.status_code == 400, answer.json
    assert answer.json["error"]["details"][0]["field"] == field


ROUTES = [
    ("POST", "events", {"events": []}),
    ("POST", "identify", {"user_id": "u"}),
    ("GET", "volume", None),
    ("GET", "top", None),
    ("GET", "funnel", None),
    ("GET", "retention", None),
    ("GET", "active", None),
    ("GET", "dashboard", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_needs_the_right_key_for_the_scope(
    togo: tuple[Flask, dict[str, str]], method: str, path: str, body: Any
) -> None:
    app, keys = togo
    client = app.test_client()
    url = f"{BASE}/{path}?step=a" if path == "funnel" else f"{BASE}/{path}"
    anonymous = client.open(url, method=method, json=body)
    assert anonymous.status_code == 401
    assert anonymous.json["error"]["code"] == "authentication_required"
    other = client.open(
        url, method=method, json=body, headers={"Authorization": f"Bearer {keys['other']}"}
    )
    assert other.status_code == 403 and other.json["error"]["code"] == "wrong_scope"
    wrong = keys["read"] if method == "POST" else keys["write"]
    refused = client.open(
        url, method=method, json=body, headers={"Authorization": f"Bearer {wrong}"}
    )
    assert refused.status_code == 403
    with app.app_context(), current_state().engine.connect() as connection:
        assert connection.execute(select(events)).first() is None


def test_routes_are_off_unless_enabled(make_app: AppFactory) -> None:
    app = make_app()
    assert app.test_client().get(f"{BASE}/volume").status_code == 404
