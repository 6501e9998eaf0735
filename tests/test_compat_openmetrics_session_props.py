"""open-metrics' ``setSessionProps``: stored on the visitor's session and shown in the timeline."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask

from flask_umetrics import UMetrics, create_api_key
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .reference_models import stored_events
from .test_compat_openmetrics import T0_MS, V1, raw_get, stored

pytestmark = pytest.mark.event_stores

FRONT = "https://front.example.com"


def stored_rows(app: Flask) -> list[tuple[str, bool, Any]]:
    """``(event, active, properties)`` of every stored event, from the app's event store."""
    with app.app_context():
        if current_state().event_store.name == "clickhouse":
            return [(e.event, e.active, e.properties) for e in stored_events()]
    return [(r.event, r.active, r.properties) for r in stored(app)]


def make_open_app(make_app: AppFactory) -> Flask:
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: permission == "ingest")
    return make_app(
        extension,
        UMETRICS_ENABLE_OPENMETRICS_API=True,
        UMETRICS_MAX_EVENT_AGE_DAYS=0,
        UMETRICS_ALLOWED_ORIGINS=FRONT,
    )


def test_session_props_land_on_the_session_in_the_timeline(make_app: AppFactory) -> None:
    app = make_open_app(make_app)
    client = app.test_client()
    earlier = {"sessionId": "v1", "events": [{"name": "view", "ts": T0_MS}]}
    now = {"sessionId": "v1", "events": [{"name": "view"}]}  # the current visit: now
    assert raw_get(client, "events", earlier).get_data(as_text=True) == "ok"
    assert raw_get(client, "events", now).get_data(as_text=True) == "ok"
    props = {"sessionId": "v1", "props": {"referrer": "news", "ab": 1}}
    answer = raw_get(client, "setSessionProps", props, Origin=FRONT)
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "ok"
    assert answer.headers["Access-Control-Allow-Origin"] == FRONT
    second = {"sessionId": "v1", "props": {"ab": 2}}
    assert raw_get(client, "setSessionProps", second).status_code == 200
    # An inactive event each: it neither starts nor extends a session.
    rows = stored_rows(app)
    assert ("$session_props", False, {"referrer": "news", "ab": 1}) in rows
    assert len(rows) == 4
    with app.app_context():
        read = create_api_key("default", "metrics.view")
    timeline = client.get(
        "/umetrics/api/persons/v1/timeline", headers={"Authorization": f"Bearer {read}"}
    )
    assert timeline.status_code == 200, timeline.json
    sessions = timeline.json["sessions"]
    # Newest first: the current visit has both calls' props merged (later wins); the
    # March visit, long before, has none.
    assert [(s["events"], s["properties"]) for s in sessions] == [
        (1, {"referrer": "news", "ab": 2}),
        (1, {}),
    ]
    names = [e["event"] for e in timeline.json["events"]]
    assert names.count("$session_props") == 2


def test_bad_session_props_are_json_errors_with_cors(make_app: AppFactory) -> None:
    app = make_open_app(make_app)
    client = app.test_client()
    for payload, field in (
        ({"sessionId": "v1", "props": "x"}, "props"),
        ({"sessionId": "v1", "props": {"k": "v\x00"}}, "props.k"),
        ({"props": {"a": 1}}, "sessionId"),
    ):
        answer = client.get(
            f"{V1}/setSessionProps?q={quote(json.dumps(payload))}", headers={"Origin": FRONT}
        )
        assert answer.status_code == 400, answer.get_data(as_text=True)
        assert answer.json["error"]["details"][0]["field"] == field
        assert answer.headers["Access-Control-Allow-Origin"] == FRONT
    # Empty or missing props: a no-op, as in open-metrics.
    for payload in ({"sessionId": "v1"}, {"sessionId": "v1", "props": {}}):
        answer = raw_get(client, "setSessionProps", payload)
        assert answer.status_code == 200 and answer.get_data(as_text=True) == "ok"
    assert stored_rows(app) == []
    preflight = client.options(
        f"{V1}/setSessionProps",
        headers={"Origin": FRONT, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == FRONT


def test_session_props_need_the_write_key(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_ENABLE_OPENMETRICS_API=True)
    answer = raw_get(app.test_client(), "setSessionProps", {"sessionId": "v", "props": {"a": 1}})
    assert answer.status_code == 401
    assert stored_rows(app) == []
