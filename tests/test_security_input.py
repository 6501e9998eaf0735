"""Hostile input: oversized and deeply nested bodies, SQL-injection strings and NUL bytes.

Every answer is a 4xx naming the problem (or a correct, empty result), never a 500, and nothing
is written or destroyed. Runs on SQLite and PostgreSQL: PostgreSQL refuses NUL in text, so a
NUL that reached the database would turn into a 500 there only. The injection tests of the
reports and the ad-hoc query run on a ClickHouse event store too (``[clickhouse]``).
"""

from __future__ import annotations

import json
import re
from typing import Any, get_origin
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, inspect, select

from flask_umetrics import create_api_key
from flask_umetrics.api.routes import router
from flask_umetrics.db.tables import events, experiments
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .events_data import load

API = "/umetrics/api"
RANGE = {"date_from": "2026-03-01", "date_to": "2026-03-04"}
ROWS = [
    ("u1", "view", "2026-03-01T10:00", {"plan": "free"}),
    ("u1", "buy", "2026-03-01T11:00", {"plan": "free", "amount": 10}),
    ("u2", "view", "2026-03-02T09:00", {"plan": "pro"}),
]
INJECTIONS = [
    "' OR 1=1 --",
    '"; DROP TABLE umetrics_events; --',
    "%' AND 1=1",
    "view' UNION SELECT key_hash FROM umetrics_api_keys --",
    "\u2019 OR \u20181\u2019=\u20181",  # unicode quotes
    "\uff07; DROP TABLE umetrics_events; --",  # fullwidth apostrophe
    "view\x00' OR 1=1 --",  # a NUL byte
]
#: Values for path arguments, so every rule can be called.
PATH_SAMPLES = {
    "key": "k",
    "key_id": "0123456789abcdef",
    "distinct_id": "u1",
    "metric_key": "m",
    "name": "traffic",
    "insight_id": "1",
    "dashboard_id": "1",
}


@pytest.fixture
def key(make_app: AppFactory) -> tuple[Flask, str]:
    app = make_app(UMETRICS_MAX_BODY_BYTES=100_000, UMETRICS_MAX_PROPERTIES_BYTES=256)
    load(app, ROWS)
    with app.app_context():
        return app, create_api_key("default", "metrics.manage")


def client_for(app_key: tuple[Flask, str]) -> FlaskClient:
    app, raw_key = app_key
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {raw_key}"
    return client


def event_count(app: Flask) -> int:
    """The stored events, in the SQL database or, on a ClickHouse event store, in ClickHouse."""
    with app.app_context():
        state = current_state()
        if state.event_store.name == "clickhouse":
            from flask_umetrics.engines.clickhouse.schema import EVENTS

            client = state.event_store.client  # type: ignore[attr-defined]
            return int(client.query(f"SELECT count() FROM {EVENTS}").result_rows[0][0])
        with state.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(events)).scalar_one())


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    error = response.json["error"]
    assert error["code"] == code, error
    if field is not None:
        assert error["details"][0]["field"] == field, error
    return str(error["message"])


# --- size ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/events", "/identify", "/query", "/experiments", "/segments"])
def test_an_oversized_body_gets_413_naming_the_limit(key: tuple[Flask, str], path: str) -> None:
    body = json.dumps({"events": [{"event": "e", "distinct_id": "x" * 150_000}]})
    response = client_for(key).post(API + path, data=body, content_type="application/json")
    message = assert_error(response, 413, "request_entity_too_large", "body")
    assert message == "The request body is larger than UMETRICS_MAX_BODY_BYTES (100000 bytes)."
    assert event_count(key[0]) == 3


def test_too_large_properties_reject_that_event_only(key: tuple[Flask, str]) -> None:
    batch = [
        {"event": "big", "distinct_id": "u9", "properties": {"text": "x" * 300}},
        {"event": "small", "distinct_id": "u9", "properties": {"text": "x" * 10}},
    ]
    response = client_for(key).post(f"{API}/events", json={"events": batch})
    assert response.status_code == 200
    assert response.json["accepted"] == 1
    assert [(r["index"], r["field"]) for r in response.json["rejected"]] == [(0, "properties")]
    assert "256" in response.json["rejected"][0]["error"]
    assert event_count(key[0]) == 4


# --- nesting -------------------------------------------------------------------------------


def nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("path", ["/events", "/query", "/experiments", "/keys"])
def test_a_body_nested_10000_levels_is_refused(
    key: tuple[Flask, str], path: str, kind: str
) -> None:
    client = client_for(key)
    response = client.post(API + path, data=nested(10_000, kind), content_type="application/json")
    assert_error(response, 400, "invalid_json")
    assert response.json["error"]["message"] == "The request body is nested too deeply."
    # The same as an event's properties, inside an otherwise valid batch.
    body = '{"events": [{"event": "e", "distinct_id": "d", "properties": {"p": %s}}]}'
    response = client.post(
        API + path, data=body % nested(10_000, kind), content_type="application/json"
    )
    assert_error(response, 400, "invalid_json")
    assert event_count(key[0]) == 3


@pytest.mark.parametrize("depth", [6, 900])
def test_properties_nested_deeper_than_the_limit_reject_the_event(
    key: tuple[Flask, str], depth: int
) -> None:
    # 900 levels parse (below Python's recursion limit) but must not exhaust it afterwards.
    body = '{"events": [{"event": "e", "distinct_id": "d", "properties": {"p": %s}}]}'
    response = client_for(key).post(
        f"{API}/events", data=body % nested(depth, "array"), content_type="application/json"
    )
    assert response.status_code == 200, response.json
    assert response.json["accepted"] == 0
    assert response.json["rejected"] == [
        {"index": 0, "field": "properties", "error": "properties: nested deeper than 5 levels"}
    ]


def test_deep_traits_and_experiment_conditions_are_4xx(key: tuple[Flask, str]) -> None:
    client = client_for(key)
    traits = client.post(
        f"{API}/identify",
        data='{"distinct_id": "u1", "traits": {"t": ' + nested(900, "array") + "}}",
        content_type="application/json",
    )
    assert_error(traits, 400, "validation_error", "traits")
    conditions = client.post(
        f"{API}/experiments",
        data='{"key": "deep", "name": "Deep", "kind": "flag", "conditions": '
        + nested(900, "object")
        + "}",
        content_type="application/json",
    )
    assert conditions.status_code == 400, conditions.json
    with key[0].app_context(), current_state().engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(experiments)).scalar() == 0


# --- SQL injection ---------------------------------------------------------------------------


def get_report_calls() -> list[tuple[str, str]]:
    """(path, query parameter) for every query parameter of every GET route with a query model,
    plus (path, "<path argument>") for every path argument."""
    calls = []
    for spec in router.specs:
        if "GET" not in spec.methods or spec.endpoint == "openapi_document":
            continue
        for argument in re.findall(r"<(?:[a-z]+:)?(\w+)>", spec.rule):
            calls.append((spec.rule, f"<{argument}>"))
        if spec.query is not None:
            calls.extend(
                (spec.rule, name) for name in spec.query.model_fields if name != "scope_id"
            )
    return calls


REPORT_CALLS = get_report_calls()
LIST_PARAMS = {
    (spec.rule, name)
    for spec in router.specs
    if spec.query is not None
    for name, info in spec.query.model_fields.items()
    if get_origin(info.annotation) is list
}


def test_the_injection_matrix_covers_the_reports() -> None:
    params = {(rule, name) for rule, name in REPORT_CALLS}
    for expected in [
        ("/query/volume", "event"),
        ("/query/trends", "breakdown"),
        ("/query/top", "property"),
        ("/query/funnel", "step"),
        ("/query/retention", "start_event"),
        ("/export/events", "format"),
        ("/persons/<anypath:distinct_id>/timeline", "<distinct_id>"),
    ]:
        assert expected in params
    assert len(REPORT_CALLS) >= 60


def test_injection_strings_in_every_query_parameter_never_give_a_500(
    key: tuple[Flask, str],
) -> None:
    client = client_for(key)
    statuses: dict[int, int] = {}
    for rule, name in REPORT_CALLS:
        for injection in INJECTIONS:
            path_args = dict(PATH_SAMPLES)
            query: dict[str, str] = dict(RANGE) if name not in RANGE else {}
            if name.startswith("<"):
                path_args[name[1:-1]] = injection
            else:
                query[name] = injection
            path = fill_path(rule, path_args)
            response = client.get(API + path, query_string=query)
            assert response.status_code < 500, (rule, name, injection, response.json)
            if "\x00" in injection:
                field = name.strip("<>")
                if (rule, name) in LIST_PARAMS:
                    field += ".0"
                assert_error(response, 400, "validation_error", field)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    assert statuses[200] >= 50 and statuses[400] >= 100, statuses  # both queried and refused
    assert event_count(key[0]) == 3
    with key[0].app_context():
        assert "umetrics_events" in inspect(current_state().engine).get_table_names()


def fill_path(rule: str, path_args: dict[str, str]) -> str:
    """``rule`` with its path arguments replaced by URL-quoted values."""
    return re.sub(r"<(?:[a-z]+:)?(\w+)>", lambda m: quote(path_args[m.group(1)], safe=""), rule)


@pytest.mark.event_stores  # also [clickhouse]: the reports' ClickHouse SQL binds them too
@pytest.mark.parametrize("injection", [i for i in INJECTIONS if "\x00" not in i])
def test_injection_as_an_event_name_matches_nothing(key: tuple[Flask, str], injection: str) -> None:
    client = client_for(key)
    volume = client.get(f"{API}/query/volume", query_string={**RANGE, "event": injection})
    assert [point["count"] for point in volume.json["series"]] == [0, 0, 0]
    values = client.get(
        f"{API}/query/top", query_string={**RANGE, "event": injection, "property": injection}
    )
    if '"' in injection:  # SQLite's JSON paths cannot address such keys: refused on both
        assert_error(values, 400, "validation_error", "property")
    else:
        assert values.json["items"] == []
    everything = client.get(f"{API}/query/volume", query_string=RANGE)
    assert [point["count"] for point in everything.json["series"]] == [2, 1, 0]


@pytest.mark.event_stores  # also [clickhouse]: engines/clickhouse/adhoc.py binds them too
@pytest.mark.parametrize("injection", [i for i in INJECTIONS if "\x00" not in i])
def test_injection_in_the_adhoc_query_is_bound_not_run(
    key: tuple[Flask, str], injection: str
) -> None:
    client = client_for(key)

    def adhoc(**spec: Any) -> Any:
        return client.post(f"{API}/query", json={**RANGE, **spec})

    by_name = adhoc(select=["count()"], where=[{"field": "event", "value": injection}])
    assert by_name.json["rows"] == [[0]]
    in_list = adhoc(
        select=["count()"], where=[{"field": "event", "op": "in", "value": ["view", injection]}]
    )
    assert in_list.json["rows"] == [[2]]
    prop = f"properties.{injection}"
    if '"' in injection:  # SQLite's JSON paths cannot address such keys: refused on both
        assert_error(adhoc(select=[prop]), 400, "validation_error", "select[0]")
    else:
        grouped = adhoc(select=[prop, "count()"], group_by=[prop])
        assert grouped.json["rows"] == [[None, 3]]  # no event has that property
        filtered = adhoc(select=["count()"], where=[{"field": prop, "op": "is_set"}])
        assert filtered.json["rows"] == [[0]]
    for bad in (
        {"select": [f"count({injection})"]},
        {"select": ["count()"], "group_by": [injection]},
        {"select": ["count()"], "order_by": [{"field": injection}]},
        {"select": [{"expr": "count()", "alias": injection}]},
        {"select": ["count()"], "where": [{"field": injection, "value": 1}]},
    ):
        response = adhoc(**bad)
        assert response.status_code == 400, (bad, response.json)
    assert event_count(key[0]) == 3


# --- NUL bytes -------------------------------------------------------------------------------


def test_nul_bytes_get_400_naming_the_field(key: tuple[Flask, str]) -> None:
    client = client_for(key)
    cases = [
        ("GET", "/query/volume", {"query_string": {"event": "a\x00"}}, "event"),
        ("GET", "/query/funnel", {"query_string": {"step": ["a", "b\x00"]}}, "step.1"),
        ("GET", "/persons/a%00b/timeline", {}, "distinct_id"),
        ("POST", "/identify", {"json": {"distinct_id": "u\x00"}}, "distinct_id"),
        ("POST", "/identify", {"json": {"distinct_id": "u1", "traits": {"a": "\x00"}}}, "traits.a"),
        (
            "POST",
            "/identify",
            {"json": {"distinct_id": "u1", "traits": {"\x00": 1}}},
            "traits.\\x00",
        ),
        ("POST", "/experiments", {"json": {"key": "k", "name": "n\x00", "kind": "flag"}}, "name"),
        (
            "POST",
            "/query",
            {"json": {"select": ["count()"], "where": [{"field": "event", "value": "\x00"}]}},
            "where.0.value",
        ),
        (
            "POST",
            "/segments",
            {"json": {"key": "s", "name": "\x00", "distinct_ids": ["u1"]}},
            "name",
        ),
    ]
    for method, path, kwargs, field in cases:
        response = client.open(API + path, method=method, **kwargs)
        message = assert_error(response, 400, "validation_error", field)
        assert message == f"{field}: must not contain NUL characters"
    # In a batch, an event with NUL is rejected on its own and the others are stored.
    batch = [
        {"event": "ok", "distinct_id": "u5"},
        {"event": "e\x00", "distinct_id": "u5"},
        {"event": "ok", "distinct_id": "u5\x00"},
        {"event": "ok", "distinct_id": "u5", "properties": {"k": "v\x00"}},
        {"event": "ok", "distinct_id": "u5", "properties": {"k\x00": "v"}},
        {"event": "ok", "distinct_id": "u5", "session_id": "s\x00"},
    ]
    response = client.post(f"{API}/events", json={"events": batch})
    assert response.status_code == 200 and response.json["accepted"] == 1
    assert [(r["index"], r["field"]) for r in response.json["rejected"]] == [
        (1, "event"),
        (2, "distinct_id"),
        (3, "properties"),
        (4, "properties"),
        (5, "session_id"),
    ]
    assert event_count(key[0]) == 4


def test_a_nul_in_an_api_key_is_an_invalid_key(key: tuple[Flask, str]) -> None:
    client = key[0].test_client()
    forged = "umk_0123456789abcde\x00_secret"
    response = client.post(f"{API}/events", json={"api_key": forged, "events": []})
    assert_error(response, 401, "invalid_api_key")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/query/funnel?step=a&step=b&date_from=0001-01-01T00:00:00%2B14:00", "date_from"),
        ("/query/volume?date_to=9999-12-31T23:59:59-12:00", "date_to"),
        ("/query/volume?date_to=0001-01-02", "date_to"),
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_400(
    key: tuple[Flask, str], path: str, field: str
) -> None:
    answer = client_for(key).get("/umetrics/api" + path)
    assert answer.status_code == 400
    assert answer.json["error"]["details"][0]["field"] == field


@pytest.mark.parametrize(
    "path",
    [
        "/persons/%C3%82%0A/timeline",
        "/persons/a%0Ab/export",
        "/persons/a%0D%0Ab/timeline",
        "/no-such%0Aroute",
    ],
)
def test_a_newline_in_a_path_still_gets_a_json_answer(key: tuple[Flask, str], path: str) -> None:
    """An id holding a newline matched no rule of ours (werkzeug's ``path`` stops at ``\\n``), so
    the host app's HTML 404 answered (found by ``make fuzz``): now our routes take it."""
    app, api_key = key
    client = app.test_client()
    answer = client.get(API + path, headers={"Authorization": f"Bearer {api_key}"})
    assert answer.status_code == 404
    assert answer.is_json, answer.data[:200]
    assert answer.json["error"]["code"] == "not_found"
