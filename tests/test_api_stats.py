"""REST handlers of the stat store: shapes, exact values, and 4xx for every bad input."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_umetrics import UMetrics, record_stat

from .conftest import AppFactory, allow_all

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
API = "/umetrics/api"


@pytest.fixture
def client(make_app: AppFactory) -> FlaskClient:
    extension = UMetrics()
    allow_all(extension)
    extension.register_stat_collector("users", lambda scope: 3, format="integer")
    app = make_app(extension, UMETRICS_TIMEZONE="Europe/Berlin")
    with app.app_context():
        for day in range(5):
            record_stat("users", day * 10, scope_id="acme", captured_at=T0 + timedelta(days=day))
    return app.test_client()


def test_overview_lists_collectors_with_latest_values(client: FlaskClient) -> None:
    body = client.get(f"{API}/stats?scope_id=acme").json
    assert body["scope_id"] == "acme"
    assert body["metrics"] == ["users"]
    [users] = body["collectors"]
    assert users["key"] == "users" and users["format"] == "integer"
    assert users["latest"]["value"] == 40.0
    assert users["latest"]["captured_at"] == "2026-01-05T00:00:00Z"
    assert users["last_run"] is None


def test_latest_and_series(client: FlaskClient) -> None:
    latest = client.get(f"{API}/stats/metrics/users/latest?scope_id=acme").json
    assert latest["latest"]["value"] == 40.0
    empty = client.get(f"{API}/stats/metrics/nothing/latest?scope_id=acme").json
    assert empty == {"metric_key": "nothing", "latest": None}
    series = client.get(f"{API}/stats/metrics/users/series?scope_id=acme&limit=3").json
    assert [p["value"] for p in series["series"]] == [20.0, 30.0, 40.0]
    # A date alone is midnight in UMETRICS_TIMEZONE (Berlin, UTC+1): 2026-01-03 00:00+01:00
    # is 2026-01-02 23:00 UTC, so the reading of 2026-01-03 00:00 UTC (value 20) is included.
    ranged = client.get(
        f"{API}/stats/metrics/users/series?scope_id=acme&since=2026-01-03&until=2026-01-05T00:00:00Z"
    ).json
    assert [p["value"] for p in ranged["series"]] == [20.0, 30.0]


def test_record_and_read_back(client: FlaskClient) -> None:
    created = client.post(
        f"{API}/stats/metrics/revenue/readings",
        json={"scope_id": "acme", "value": 99.5, "captured_at": "2026-02-01T10:00:00+00:00"},
    )
    assert created.status_code == 201
    assert created.json == {
        "metric_key": "revenue",
        "value": 99.5,
        "scope_id": "acme",
        "captured_at": "2026-02-01T10:00:00Z",
        "source": "api",
    }
    series = client.get(f"{API}/stats/metrics/revenue/series?scope_id=acme").json["series"]
    assert series == [{"captured_at": "2026-02-01T10:00:00Z", "value": 99.5, "source": "api"}]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("GET", "/stats/metrics/users/series?limit=0", None, 400, "limit"),
        ("GET", "/stats/metrics/users/series?limit=abc", None, 400, "limit"),
        ("GET", "/stats/metrics/users/series?limit=100000", None, 400, "limit"),
        ("GET", "/stats/metrics/users/series?since=yesterday", None, 400, "since"),
        ("GET", "/stats/metrics/users/series?bogus=1", None, 400, "bogus"),
        ("GET", "/stats?scope_id=no%20spaces", None, 400, "scope_id"),
        ("GET", "/stats/metrics/bad%20key/series", None, 400, "metric_key"),
        ("POST", "/stats/metrics/m/readings", {"value": "NaN"}, 400, "value"),
        ("POST", "/stats/metrics/m/readings", {"value": "lots"}, 400, "value"),
        ("POST", "/stats/metrics/m/readings", {}, 400, "value"),
        ("POST", "/stats/metrics/m/readings", {"value": 1, "extra": 2}, 400, "extra"),
        ("POST", "/stats/metrics/m/readings", [1, 2], 400, "body"),
        ("POST", "/stats/metrics/m/readings", {"value": 1, "captured_at": "x"}, 400, "captured_at"),
        (
            "POST",
            "/stats/metrics/m/readings?scope_id=a",
            {"scope_id": "b", "value": 1},
            400,
            "scope_id",
        ),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_field(
    client: FlaskClient, method: str, path: str, body: object, status: int, field: str
) -> None:
    response = client.open(API + path, method=method, json=body)
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert error["code"] == "validation_error"
    assert field in [detail["field"] for detail in error["details"]]
    assert field in error["message"]


def test_invalid_json_and_oversized_bodies(client: FlaskClient) -> None:
    broken = client.post(
        f"{API}/stats/metrics/m/readings", data="{not json", content_type="application/json"
    )
    assert broken.status_code == 400 and broken.json["error"]["code"] == "invalid_json"
    huge = client.post(
        f"{API}/stats/metrics/m/readings",
        data='{"value": 1, "pad": "' + "x" * 2_000_000 + '"}',
        content_type="application/json",
    )
    assert huge.status_code == 413 and huge.json["error"]["code"] == "request_entity_too_large"
    series = client.get(f"{API}/stats/metrics/m/series").json["series"]
    assert series == []


def test_unknown_paths_and_methods_answer_json(client: FlaskClient) -> None:
    missing = client.get(f"{API}/nope/nope")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    wrong = client.put(f"{API}/stats")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_openapi_documents_every_route(client: FlaskClient, app: Flask) -> None:
    document = client.get(f"{API}/openapi.json").json
    documented = {
        (path, method.upper()) for path, ops in document["paths"].items() for method in ops
    }
    flask_app = client.application
    for rule in flask_app.url_map.iter_rules():
        if not rule.endpoint.startswith("umetrics_api.") or rule.endpoint.endswith("unknown_route"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented
    series = document["paths"]["/umetrics/api/stats/metrics/{metric_key}/series"]["get"]
    names = [p["name"] for p in series["parameters"]]
    assert names == ["metric_key", "scope_id", "limit", "since", "until"]
    assert series["x-umetrics-permission"] == "metrics.view"
    assert "401" in series["responses"] and "403" in series["responses"]
    record = document["paths"]["/umetrics/api/stats/metrics/{metric_key}/readings"]["post"]
    assert record["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "RecordBody"
    )
    assert "RecordBody" in document["components"]["schemas"]
