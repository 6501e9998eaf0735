"""UMETRICS_TOGO_API_PATH / UMETRICS_OPENMETRICS_PATH: the compat APIs where their clients call."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from flask import Flask

from flask_umetrics import create_api_key

from .conftest import AppFactory
from .test_compat_openmetrics import keyed_open_app, stored


def mounted(make_app: AppFactory, **config: object) -> Flask:
    """Both APIs; open-metrics' keyless calls act with the host's open-metrics key."""
    return keyed_open_app(make_app, UMETRICS_ENABLE_TOGO_API=True, **config)


def test_default_paths_are_under_the_prefix(make_app: AppFactory) -> None:
    app = mounted(make_app)
    client = app.test_client()
    assert client.get("/umetrics/v1/ping").get_data(as_text=True) == "pong"
    assert client.get("/v1/ping").status_code == 404
    assert client.get("/umetrics/api/analytics/active").status_code == 401  # served
    assert client.get("/api/analytics/active").status_code == 404


def test_both_apis_at_the_root_where_unmodified_clients_call(make_app: AppFactory) -> None:
    app = mounted(
        make_app, UMETRICS_TOGO_API_PATH="/api/analytics", UMETRICS_OPENMETRICS_PATH="/v1/"
    )
    client = app.test_client()
    assert client.get("/v1/ping").get_data(as_text=True) == "pong"
    payload = {"sessionId": "visitor", "events": [{"name": "view"}]}
    answer = client.get(f"/v1/events?q={quote(json.dumps(payload))}")
    assert answer.get_data(as_text=True) == "ok"
    assert [row.event for row in stored(app)] == ["view"]
    assert client.get("/umetrics/v1/ping").status_code == 404
    with app.app_context():
        read = create_api_key("default", "metrics.view")
    active = client.get("/api/analytics/active", headers={"Authorization": f"Bearer {read}"})
    assert active.status_code == 200 and active.json == 1
    assert client.get("/umetrics/api/analytics/active").status_code == 404


def test_open_metrics_at_the_very_root(make_app: AppFactory) -> None:
    app = mounted(make_app, UMETRICS_OPENMETRICS_PATH="/")
    assert app.test_client().get("/ping").get_data(as_text=True) == "pong"


@pytest.mark.parametrize("bad", ["v1", "/v1?x", "/a b"])
def test_a_bad_path_refuses_to_start(make_app: AppFactory, bad: str) -> None:
    with pytest.raises(Exception, match="UMETRICS_OPENMETRICS_PATH"):
        mounted(make_app, UMETRICS_OPENMETRICS_PATH=bad)
