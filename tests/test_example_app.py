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
    app_collectors = {
        "users_total",
        "signups_7d",
        "active_users_7d",
        "mrr",
        "paying_customers",
        "notes_total",
    }
    builtin = {
        "events.dau",
        "events.wau",
        "events.mau",
        "events.events_today",
        "events.new_persons_today",
    }
    assert {c["key"] for c in collectors} == app_collectors | builtin
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


def test_demo_events_cover_the_reports(demo: Flask) -> None:
    from flask_umetrics.queries.context import report_context
    from flask_umetrics.queries.top import top_events

    with demo.app_context():
        ctx = report_context(scope_id="acme")
        names = {item.key for item in top_events(ctx, limit=20).items}
    assert {"$pageview", "signed_up", "note_created"} <= names


def test_visitors_are_tracked_and_merged_at_sign_up(tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from flask_umetrics.db.tables import events, person_distinct_ids

    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "UMETRICS_AUTO_MIGRATE": True}
    )
    client = app.test_client()
    assert client.get("/?utm_source=newsletter&utm_medium=email").status_code == 200
    assert client.get("/pricing").status_code == 200
    visitor = client.get_cookie("acme_visitor")
    assert visitor is not None and visitor.value.startswith("v-")
    form = {"name": "Grace", "email": "grace@example.org", "password": "correct horse"}
    assert client.post("/signup", data=form).status_code == 302
    client.post("/app", data={"title": "first", "body": "hello"})
    with app.app_context(), app.extensions["umetrics"].engine.connect() as connection:
        names = connection.execute(
            select(events.c.event, events.c.distinct_id).order_by(events.c.id)
        ).all()
        people = connection.execute(
            select(func.count(person_distinct_ids.c.person_id.distinct()))
        ).scalar_one()
    # Redirects are not followed here, so no page view after the POSTs.
    assert [n for n, _ in names] == ["$pageview", "$pageview", "signed_up", "note_created"]
    assert names[0][1] == visitor.value and names[2][1] != visitor.value
    assert people == 1  # the anonymous visitor and the new user are one person

    quiet = app.test_client()
    quiet.get("/", headers={"DNT": "1"})
    with app.app_context(), app.extensions["umetrics"].engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(events)).scalar_one() == 4
