"""Hostile input on the compatibility APIs (togo's ``/api/analytics/...``, open-metrics'
``/v1/...?q=<json>``): deep nesting, oversized bodies, NUL bytes and SQL-injection strings.

As on the native API (tests/test_security_input.py): a 4xx naming the problem or a correct
answer, never a 500, and nothing written unless the input is a legitimate (if odd) event.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, inspect, select

from flask_umetrics import create_api_key
from flask_umetrics.api.compat.togo import router as togo_router
from flask_umetrics.db.tables import events, person_distinct_ids
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .events_data import load
from .test_security_input import INJECTIONS, nested

TOGO = "/umetrics/api/analytics"
V1 = "/umetrics/v1"
LIMIT = 100_000
RANGE = {"from": "2026-03-01", "to": "2026-03-04"}
ROWS = [
    ("u1", "view", "2026-03-01T10:00", {"plan": "free"}),
    ("u1", "buy", "2026-03-01T11:00", {"plan": "free", "amount": 10}),
    ("u2", "view", "2026-03-02T09:00", {"plan": "pro"}),
]
#: open-metrics routes with a payload that each would accept.
V1_PAYLOADS: dict[str, dict[str, Any]] = {
    "ping": {"sessionId": "v1"},
    "createUser": {"sessionId": "v1"},
    "events": {"sessionId": "v1", "events": [{"name": "e", "props": {"p": 1}}]},
    "setUserId": {"sessionId": "v1", "uid": "user-1"},
    "setUserProps": {"sessionId": "v1", "props": {"p": 1}},
    "setSessionProps": {"sessionId": "v1", "props": {"p": 1}},
}


@pytest.fixture
def compat(make_app: AppFactory) -> tuple[Flask, FlaskClient]:
    """Both compatibility APIs on, three events stored, a client with a manage key."""
    app = make_app(
        UMETRICS_ENABLE_TOGO_API=True,
        UMETRICS_ENABLE_OPENMETRICS_API=True,
        UMETRICS_MAX_BODY_BYTES=LIMIT,
        UMETRICS_MAX_PROPERTIES_BYTES=256,
        UMETRICS_MAX_EVENT_AGE_DAYS=0,
    )
    load(app, ROWS)
    with app.app_context():
        raw_key = create_api_key("default", "metrics.manage")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {raw_key}"
    return app, client


def event_count(app: Flask) -> int:
    with app.app_context(), current_state().engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(events)).scalar_one())


def event_names(app: Flask) -> list[str]:
    with app.app_context(), current_state().engine.connect() as connection:
        return sorted(connection.execute(select(events.c.event)).scalars())


def distinct_ids(app: Flask) -> list[str]:
    with app.app_context(), current_state().engine.connect() as connection:
        return sorted(connection.execute(select(person_distinct_ids.c.distinct_id)).scalars())


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    error = response.json["error"]
    assert error["code"] == code, error
    if field is not None:
        assert error["details"][0]["field"] == field, error
    return str(error["message"])


def embed(payload: dict[str, Any], deep: str) -> str:
    """``payload`` as JSON with the JSON text ``deep`` in place of the string "@"."""
    return json.dumps(payload).replace('"@"', deep)


def v1_get(client: FlaskClient, route: str, q: str) -> Any:
    return client.get(f"{V1}/{route}?q={quote(q)}")


def v1_raw_get(client: FlaskClient, route: str, q: str) -> Any:
    """As open-metrics' browser client sends it: the JSON not URL-encoded."""
    return client.get(f"{V1}/{route}", query_string="q=" + q)


def v1_post(client: FlaskClient, route: str, body: str) -> Any:
    return client.post(f"{V1}/{route}", data=body, content_type="application/json")


# --- nesting -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("path", ["/events", "/identify"])
def test_togo_bodies_nested_10000_levels_are_refused(
    compat: tuple[Flask, FlaskClient], path: str, kind: str
) -> None:
    app, client = compat
    answer = client.post(TOGO + path, data=nested(10_000, kind), content_type="application/json")
    message = assert_error(answer, 400, "invalid_json")
    assert message == "The request body is nested too deeply."
    inside = embed(
        {"events": [{"name": "e", "user_id": "d", "properties": {"p": "@"}}]}, nested(10_000, kind)
    )
    answer = client.post(TOGO + path, data=inside, content_type="application/json")
    assert_error(answer, 400, "invalid_json")
    assert event_count(app) == 3


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("route", sorted(V1_PAYLOADS))
def test_open_metrics_payloads_nested_10000_levels_are_refused(
    compat: tuple[Flask, FlaskClient], route: str, kind: str
) -> None:
    app, client = compat
    deep = nested(10_000, kind)
    inside = embed({**V1_PAYLOADS[route], "props": "@"}, deep)
    for payload in (deep, inside):
        for answer in (v1_get(client, route, payload), v1_raw_get(client, route, payload)):
            assert assert_error(answer, 400, "invalid_json", "q") == "q is nested too deeply."
        posted = v1_post(client, route, payload)
        message = assert_error(posted, 400, "invalid_json")
        assert message == "The request body is nested too deeply."
    assert event_count(app) == 3
    assert distinct_ids(app) == ["u1", "u2"]


def test_properties_nested_below_the_parser_limit_are_a_400(
    compat: tuple[Flask, FlaskClient],
) -> None:
    """900 levels parse, then meet the properties' depth limit."""
    app, client = compat
    deep = nested(900, "array")
    events_q = embed({"sessionId": "v1", "events": [{"name": "e", "props": {"p": "@"}}]}, deep)
    answer = v1_get(client, "events", events_q)
    assert_error(answer, 400, "validation_error", "events[0].props")
    props_q = embed({"sessionId": "v1", "props": {"p": "@"}}, deep)
    assert_error(v1_get(client, "setUserProps", props_q), 400, "validation_error", "props")
    togo = embed({"events": [{"name": "e", "user_id": "d", "properties": {"p": "@"}}]}, deep)
    batch = client.post(f"{TOGO}/events", data=togo, content_type="application/json")
    assert batch.status_code == 200
    assert batch.json["accepted"] == 0
    assert [(r["index"], r["field"]) for r in batch.json["rejected"]] == [(0, "properties")]
    traits = embed({"user_id": "u1", "traits": {"t": "@"}}, deep)
    identified = client.post(f"{TOGO}/identify", data=traits, content_type="application/json")
    assert_error(identified, 400, "validation_error", "traits")
    assert event_count(app) == 3


# --- size ------------------------------------------------------------------------------------


def test_oversized_bodies_get_413(compat: tuple[Flask, FlaskClient]) -> None:
    app, client = compat
    big = json.dumps({"sessionId": "v1", "events": [{"name": "e", "props": {"t": "x" * LIMIT}}]})
    assert len(big) > LIMIT
    for answer in (
        client.post(f"{TOGO}/events", data=big, content_type="application/json"),
        client.post(f"{TOGO}/identify", data=big, content_type="application/json"),
        v1_post(client, "events", big),
        v1_get(client, "events", big),
        v1_raw_get(client, "events", big),
    ):
        message = assert_error(answer, 413, "request_entity_too_large")
        assert f"UMETRICS_MAX_BODY_BYTES ({LIMIT} bytes)" in message
    assert event_count(app) == 3


def test_large_properties_below_the_body_limit_are_a_400(
    compat: tuple[Flask, FlaskClient],
) -> None:
    app, client = compat
    props = json.dumps({"sessionId": "v1", "events": [{"name": "e", "props": {"t": "x" * 300}}]})
    answer = v1_get(client, "events", props)
    message = assert_error(answer, 400, "validation_error", "events[0].props")
    assert "256" in message
    too_many = {"sessionId": "v1", "events": [{"name": "e"}] * 1001}
    assert_error(v1_post(client, "events", json.dumps(too_many)), 400, "validation_error", "events")
    togo = {"events": [{"name": "e", "user_id": "d"}] * 1001}
    assert_error(client.post(f"{TOGO}/events", json=togo), 413, "too_many_events", "events")
    assert event_count(app) == 3


# --- NUL bytes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "payload", "field"),
    [
        ("ping", {"sessionId": "v\x00"}, "sessionId"),
        ("createUser", {"sessionId": "v\x00"}, "sessionId"),
        ("events", {"sessionId": "v\x00", "events": []}, "sessionId"),
        ("events", {"sessionId": "v", "events": [{"name": "e\x00"}]}, "events.0.name"),
        ("events", {"sessionId": "v", "events": [{"name": "e", "props": {"k": "\x00"}}]}, None),
        ("events", {"sessionId": "v", "events": [{"name": "e", "props": {"\x00": 1}}]}, None),
        ("events", {"sessionId": "v", "events": [{"name": "e", "uuid": "\x00"}]}, None),
        ("setUserId", {"sessionId": "v", "uid": "u\x00"}, "uid"),
        ("setUserId", {"sessionId": "v\x00", "uid": "u"}, "sessionId"),
        ("setUserProps", {"sessionId": "v", "props": {"k": "v\x00"}}, "props.k"),
        ("setUserProps", {"sessionId": "v", "props": {"k\x00": 1}}, "props.k\\x00"),
        ("events", {"sessionId": "v", "events": [], "scope_id": "s\x00"}, "scope_id"),
        ("events", {"sessionId": "v", "events": [], "api_key": "umk_\x00"}, None),
    ],
)
def test_nul_bytes_in_open_metrics_payloads_are_a_400(
    compat: tuple[Flask, FlaskClient], route: str, payload: dict[str, Any], field: str | None
) -> None:
    app, client = compat
    text = json.dumps(payload)
    for answer in (v1_get(client, route, text), v1_post(client, route, text)):
        assert answer.status_code == 400, answer.get_data(as_text=True)[:300]
        if field is not None:
            assert_error(answer, 400, "validation_error", field)
    raw = v1_raw_get(client, route, text.replace("\\u0000", "%00"))
    assert raw.status_code == 400, raw.get_data(as_text=True)[:300]
    assert event_count(app) == 3
    assert distinct_ids(app) == ["u1", "u2"]


def test_nul_bytes_on_togo_routes_are_a_400(compat: tuple[Flask, FlaskClient]) -> None:
    app, client = compat
    bodies = [
        ("/events", {"events": [{"name": "e\x00", "user_id": "d"}]}),
        ("/events", {"events": [{"name": "e", "user_id": "d\x00"}]}),
        ("/events", {"events": [{"name": "e", "anon_id": "\x00"}]}),
        ("/events", {"events": [{"name": "e", "user_id": "d", "properties": {"\x00": 1}}]}),
        ("/identify", {"user_id": "u\x00"}),
        ("/identify", {"user_id": "u1", "anon_id": "a\x00"}),
        ("/identify", {"user_id": "u1", "traits": {"t": "\x00"}}),
    ]
    for path, body in bodies:
        answer = client.post(TOGO + path, json=body)
        assert answer.status_code == 400, (path, body, answer.json)
        assert "NUL" in answer.json["error"]["message"]
    params = [
        ("/volume", {"event": "e\x00"}, "event"),
        ("/top", {"event": "e", "property": "p\x00"}, "property"),
        ("/funnel", {"step": ["a", "b\x00"]}, "step.1"),
        ("/retention", {"offsets": "1,\x00"}, "offsets"),
        ("/active", {"from": "2026-03-01\x00"}, "from"),
        ("/dashboard", {"scope_id": "default\x00"}, "scope_id"),
    ]
    for path, query, field in params:
        answer = client.get(TOGO + path, query_string=query)
        assert_error(answer, 400, "validation_error", field)
    assert event_count(app) == 3
    assert distinct_ids(app) == ["u1", "u2"]


# --- SQL injection ---------------------------------------------------------------------------


def togo_read_params() -> list[tuple[str, str]]:
    """(rule, query parameter name as sent) for every GET route of the togo blueprint."""
    found = []
    for spec in togo_router.specs:
        if "GET" not in spec.methods or spec.query is None:
            continue
        for name, info in spec.query.model_fields.items():
            found.append((spec.rule, info.alias or name))
    return found


TOGO_READ_PARAMS = togo_read_params()


def test_the_injection_matrix_covers_togo_reads() -> None:
    rules = {rule for rule, _ in TOGO_READ_PARAMS}
    assert len(rules) == 6
    assert ("/top", "property") in TOGO_READ_PARAMS
    assert ("/retention", "offsets") in TOGO_READ_PARAMS
    assert ("/funnel", "step") in TOGO_READ_PARAMS
    assert len(TOGO_READ_PARAMS) == 30  # scope_id included


def test_injections_in_every_togo_query_parameter_never_give_a_500(
    compat: tuple[Flask, FlaskClient],
) -> None:
    app, client = compat
    statuses: dict[int, int] = {}
    for rule, name in TOGO_READ_PARAMS:
        for injection in INJECTIONS:
            query: dict[str, Any] = {k: v for k, v in RANGE.items() if k != name}
            if rule == "/funnel" and name != "step":
                query["step"] = "view"
            query[name] = injection
            answer = client.get(TOGO + rule, query_string=query)
            assert answer.status_code < 500, (rule, name, injection, answer.json)
            if "\x00" in injection:
                assert_error(answer, 400, "validation_error")
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
    # Free-text parameters (event names, steps) answer, typed ones (dates, numbers, choices,
    # scope ids, quoted property keys) refuse: 6 texts x 4 parameters are queried.
    assert statuses == {200: 24, 400: 186}, statuses
    assert event_count(app) == 3
    with app.app_context():
        assert "umetrics_events" in inspect(current_state().engine).get_table_names()


@pytest.mark.parametrize("injection", [i for i in INJECTIONS if "\x00" not in i])
def test_togo_reports_of_an_injected_name_are_empty(
    compat: tuple[Flask, FlaskClient], injection: str
) -> None:
    _, client = compat
    volume = client.get(f"{TOGO}/volume", query_string={**RANGE, "event": injection})
    assert [point["count"] for point in volume.json] == [0, 0, 0]
    funnel = client.get(f"{TOGO}/funnel", query_string={**RANGE, "step": ["view", injection]})
    assert [(s["count"], s["conversion"]) for s in funnel.json] == [(2, 1.0), (0, 0.0)]
    top = client.get(
        f"{TOGO}/top", query_string={**RANGE, "event": injection, "property": injection}
    )
    if '"' in injection:  # SQLite's JSON paths cannot address such keys: refused on both
        assert_error(top, 400, "validation_error", "property")
    else:
        assert top.status_code == 200 and top.json == []
    retained = client.get(
        f"{TOGO}/retention",
        query_string={"from": "2026-03-01", "start_event": injection, "offsets": "0,1"},
    )
    assert retained.json == [{"offset_days": 0, "returned": 0}, {"offset_days": 1, "returned": 0}]
    everything = client.get(f"{TOGO}/volume", query_string=RANGE)
    assert [point["count"] for point in everything.json] == [2, 1, 0]


def test_injections_in_every_open_metrics_field_are_stored_as_text_or_refused(
    compat: tuple[Flask, FlaskClient],
) -> None:
    """An injection string is a legitimate (odd) name: stored verbatim, never run."""
    app, client = compat
    injections = [i for i in INJECTIONS if "\x00" not in i]
    statuses: dict[int, int] = {}
    for index, injection in enumerate(injections):
        session = f"s{index}"
        calls = [
            ("createUser", {"sessionId": injection}),
            ("events", {"sessionId": session, "events": [{"name": injection}]}),
            (
                "events",
                {"sessionId": session, "events": [{"name": "e", "props": {"p": injection}}]},
            ),
            ("events", {"sessionId": session, "events": [{"name": "e", "props": {injection: 1}}]}),
            ("setUserProps", {"sessionId": session, "props": {injection: injection}}),
            ("setUserId", {"sessionId": session, "uid": injection}),
            ("events", {"sessionId": session, "events": [], "scope_id": injection}),
            ("events", {"sessionId": session, "events": [{"name": "e", "ts": injection}]}),
            ("events", {"sessionId": session, "events": [{"name": "e", "uuid": injection}]}),
        ]
        for route, payload in calls:
            answer = v1_get(client, route, json.dumps(payload))
            assert answer.status_code < 500, (route, payload, answer.get_data(as_text=True))
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        as_key = app.test_client().get(
            f"{V1}/events?q={quote(json.dumps({'sessionId': session, 'api_key': injection}))}"
        )
        assert_error(as_key, 401, "invalid_api_key")
    # Each injection stored verbatim as a name, plus an "e" with it as a property value, a
    # property key and a uuid; a scope_id or timestamp it is not.
    assert event_names(app) == sorted(["buy", "view", "view", *injections, *["e"] * 18])
    assert statuses == {200: 6 * 7, 400: 6 * 2}, statuses
    ids = distinct_ids(app)
    for injection in injections:
        assert injection in ids  # as a created visitor and as a user id
    with app.app_context():
        assert "umetrics_events" in inspect(current_state().engine).get_table_names()


def test_injections_in_togo_ingestion_are_stored_as_text(
    compat: tuple[Flask, FlaskClient],
) -> None:
    app, client = compat
    injections = [i for i in INJECTIONS if "\x00" not in i]
    batch = [
        {"name": injection, "user_id": injection, "properties": {injection: injection}}
        for injection in injections
    ]
    answer = client.post(f"{TOGO}/events", json={"events": batch})
    assert answer.json == {"accepted": 6, "duplicates": 0, "rejected": []}
    for injection in injections:
        identified = client.post(
            f"{TOGO}/identify", json={"user_id": injection + "!", "anon_id": injection}
        )
        assert identified.status_code == 200
    assert event_names(app) == sorted(["buy", "view", "view", *injections])
    expected_ids = sorted(["u1", "u2", *injections, *(i + "!" for i in injections)])
    assert distinct_ids(app) == expected_ids


def test_a_bad_q_is_a_400_naming_q(compat: tuple[Flask, FlaskClient]) -> None:
    app, client = compat
    for q in ("{", "[1]", '"text"', "{'single': 1}", "1e999999", "{" * 100_00):
        answer = v1_get(client, "events", q)
        assert answer.status_code == 400, (q[:20], answer.get_data(as_text=True)[:200])
    for body in ("[1]", '"x"', "1"):
        answer = v1_post(client, "events", body)
        assert_error(answer, 400, "validation_error", "body")
    message = assert_error(v1_post(client, "events", "not json"), 400, "invalid_json")
    assert message == "The request body is not valid JSON."
    assert event_count(app) == 3


def test_every_open_metrics_route_is_covered(compat: tuple[Flask, FlaskClient]) -> None:
    app, _ = compat
    rules = {
        rule.rule.removeprefix(V1 + "/")
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("umetrics_openmetrics.")
    }
    assert rules == set(V1_PAYLOADS)
    togo = {r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("umetrics_togo.")}
    covered = {TOGO + rule for rule, _ in TOGO_READ_PARAMS}
    assert togo - covered == {f"{TOGO}/events", f"{TOGO}/identify"}  # the ingest tests' routes
