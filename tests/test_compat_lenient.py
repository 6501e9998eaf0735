"""The compat APIs are lenient where the originals are and no data is at risk."""

from __future__ import annotations

import json
from urllib.parse import quote

from flask import Flask

from flask_umetrics import UMetrics, create_api_key

from .conftest import AppFactory
from .test_compat_openmetrics import T0_MS, V1, groups, raw_get, stored
from .test_compat_togo import BASE, EVENTS


def togo_app(make_app: AppFactory) -> tuple[Flask, str, str]:
    app = make_app(UMETRICS_ENABLE_TOGO_API=True, UMETRICS_MAX_EVENT_AGE_DAYS=0)
    with app.app_context():
        return app, create_api_key("default", "ingest"), create_api_key("default", "metrics.view")


def open_app(make_app: AppFactory) -> Flask:
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: permission == "ingest")
    return make_app(extension, UMETRICS_ENABLE_OPENMETRICS_API=True, UMETRICS_MAX_EVENT_AGE_DAYS=0)


def test_togo_reports_ignore_unknown_query_parameters(make_app: AppFactory) -> None:
    app, write, read = togo_app(make_app)
    client = app.test_client()
    client.post(f"{BASE}/events", json={"events": EVENTS}, headers={"X-UMetrics-Key": write})
    auth = {"Authorization": f"Bearer {read}"}
    window = "from=2026-03-02&to=2026-03-05"
    for path, expected in (
        (f"active?{window}", 4),
        (f"top?{window}&limit=1", [{"key": "visit", "count": 6}]),
        ("retention?from=2026-03-02&offsets=1", [{"offset_days": 1, "returned": 2}]),
        ("dashboard?days=1&to=2026-03-05", None),
        (f"volume?{window}&event=signup", None),
        (f"funnel?step=visit&step=signup&{window}", None),
    ):
        answer = client.get(f"{BASE}/{path}&_=1733350000000&colour=red", headers=auth)
        assert answer.status_code == 200, (path, answer.json)
        if expected is not None:
            assert answer.json == expected, path
    # The known parameters are still checked.
    bad = client.get(f"{BASE}/active?from=soon&_=1", headers=auth)
    assert bad.status_code == 400 and bad.json["error"]["details"][0]["field"] == "from"


def test_togo_events_as_a_bare_array_and_events_of_nobody_rejected(
    make_app: AppFactory,
) -> None:
    app, write, _ = togo_app(make_app)
    client = app.test_client()
    batch = [
        {"name": "visit", "user_id": "u1", "timestamp": "2026-03-02T10:00:00Z"},
        {"name": "visit", "timestamp": "2026-03-02T10:00:00Z"},  # neither id
        {"name": "visit", "anon_id": "", "user_id": "", "timestamp": "2026-03-02T10:00:00Z"},
    ]
    answer = client.post(f"{BASE}/events", json=batch, headers={"X-UMetrics-Key": write})
    assert answer.status_code == 200, answer.json
    assert answer.json["accepted"] == 1 and answer.json["duplicates"] == 0
    assert [(r["index"], r["field"]) for r in answer.json["rejected"]] == [
        (1, "user_id"),
        (2, "user_id"),
    ]
    assert "user_id or anon_id is required" in answer.json["rejected"][0]["error"]
    with app.app_context():
        from flask_umetrics.db.tables import events
        from flask_umetrics.state import current_state

        with current_state().engine.connect() as connection:
            rows = connection.execute(events.select()).all()
    assert [row.distinct_id for row in rows] == ["u1"]


def test_one_bad_open_metrics_event_does_not_lose_the_batch(make_app: AppFactory) -> None:
    app = open_app(make_app)
    client = app.test_client()
    payload = {
        "sessionId": "v1",
        "events": [
            {"name": "view", "ts": T0_MS},
            {"name": "view", "ts": T0_MS, "colour": 1},  # unknown key: this event only
            {"ts": T0_MS},  # no name
            {"name": "click", "ts": T0_MS + 1000, "props": {"x": 1}},
        ],
    }
    answer = raw_get(client, "events", payload)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json == {
        "accepted": 2,
        "rejected": [
            {
                "index": 1,
                "field": "events[1].colour",
                "message": "is not an open-metrics event field",
            },
            {
                "index": 2,
                "field": "events[2].name",
                "message": answer.json["rejected"][1]["message"],
            },
        ],
    }
    assert [(r.event, r.properties) for r in stored(app)] == [("view", {}), ("click", {"x": 1})]
    # All valid: the plain "ok" open-metrics' clients read.
    fine = {"sessionId": "v1", "events": [{"name": "view", "ts": T0_MS + 2000}]}
    assert raw_get(client, "events", fine).get_data(as_text=True) == "ok"


def test_empty_or_missing_user_props_are_a_no_op(make_app: AppFactory) -> None:
    app = open_app(make_app)
    client = app.test_client()
    for payload in ({"sessionId": "v1"}, {"sessionId": "v1", "props": {}}):
        answer = client.get(f"{V1}/setUserProps?q={quote(json.dumps(payload))}")
        assert answer.status_code == 200 and answer.get_data(as_text=True) == "ok"
    assert groups(app) == []
    keyed = make_app(UMETRICS_ENABLE_OPENMETRICS_API=True)  # still needs the write key
    assert raw_get(keyed.test_client(), "setUserProps", {"sessionId": "v1"}).status_code == 401
