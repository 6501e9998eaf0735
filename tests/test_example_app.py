"""The demo app: seeding gives every collector a history, and its credentials gate the API."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from flask import Flask

from example_app import create_app
from flask_umetrics import get_stat_series


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    instance = tmp_path_factory.mktemp("demo-instance")
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(instance)})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["umetrics", "db", "upgrade"]).exit_code == 0
    seeded = runner.invoke(args=["seed-demo", "--days", "30", "--users", "60"])
    assert seeded.exit_code == 0, seeded.output
    return app


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_stats_api_with_the_demo_credentials(demo: Flask) -> None:
    client = demo.test_client()
    response = client.get(
        "/umetrics/api/stats?scope_id=acme", headers=basic("admin@example.com", "demo")
    )
    assert response.status_code == 200
    collectors = response.json["collectors"]
    assert {c["key"] for c in collectors} == {
        "users_total",
        "signups_7d",
        "active_users_7d",
        "mrr",
        "paying_customers",
        "notes_total",
    }
    assert all(c["latest"] is not None for c in collectors)
    users = next(c for c in collectors if c["key"] == "users_total")
    assert users["latest"]["value"] == 60.0  # the live snapshot counts every seeded user

    credentials = (Path(demo.instance_path) / "demo-credentials.txt").read_text()
    key = next(
        line.split("=", 1)[1]
        for line in credentials.splitlines()
        if line.startswith("UMETRICS_API_KEY=")
    )
    with_key = client.get(
        "/umetrics/api/stats?scope_id=acme", headers={"Authorization": f"Bearer {key}"}
    )
    assert with_key.status_code == 200

    anonymous = client.get("/umetrics/api/stats?scope_id=acme")
    assert anonymous.status_code == 401 and anonymous.json["error"]["code"]
    wrong = client.get(
        "/umetrics/api/stats?scope_id=acme", headers=basic("admin@example.com", "nope")
    )
    assert wrong.status_code in (401, 403)


def test_history_has_one_reading_per_day_plus_the_live_snapshot(demo: Flask) -> None:
    with demo.app_context():
        series = get_stat_series("users_total", scope_id="acme", limit=1000)
    assert len(series) == 31
    values = [reading.value for reading in series]
    assert values == sorted(values)  # users only ever grow
    assert [r.source for r in series[:-1]] == ["demo"] * 30 and series[-1].source == "collector"


def test_pages_render(demo: Flask) -> None:
    client = demo.test_client()
    for path in ("/", "/pricing", "/signup", "/login"):
        assert client.get(path).status_code == 200, path
    assert client.get("/app").status_code == 302
