"""What one report may cost: range and bucket limits (400 naming the field, answered before any
query runs) and the statement timeout (503 ``query_timeout``, the connection usable after)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Connection, text

from flask_umetrics import UMetrics
from flask_umetrics.queries import trends as trends_module
from flask_umetrics.queries.connection import QueryTimeout, report_connection
from flask_umetrics.state import current_state

from .conftest import AppFactory, allow_all
from .events_data import load

API = "/umetrics/api"
#: Counts to 20 million: seconds on either database, far past a 0.05 s timeout.
SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000000) "
    "SELECT count(*) FROM c"
)
LONG_RANGE = "date_from=2010-01-01&date_to=2026-01-01"  # 5,844 days

ROUTES_WITH_A_RANGE = [
    "/query/volume?",
    "/query/trends?breakdown=plan&",
    "/query/top?",
    "/query/active?",
    "/query/active?series=mau&",
    "/query/retention?",
    "/query/cohorts?",
    "/query/sessions?",
    "/query/paths?",
    "/query/funnel?step=view&step=buy&",
    "/query/attribution?conversion_event=buy&",
    "/query/dashboard?",
    "/analytics/volume?from=2010-01-01&to=2026-01-01&",  # togo compat: its own names
]


def _app(make_app: AppFactory, **config: Any) -> Flask:
    extension = UMetrics()
    allow_all(extension)
    return make_app(extension, SECRET_KEY="test", UMETRICS_ENABLE_TOGO_API=True, **config)


def _field(answer: Any) -> str:
    assert answer.status_code == 400, answer.text
    (detail,) = answer.get_json()["error"]["details"]
    return str(detail["field"])


def test_the_issue_reproduction_is_a_fast_400(make_app: AppFactory) -> None:
    client = _app(make_app).test_client()
    started = time.perf_counter()
    answer = client.get(f"{API}/query/volume?interval=hour&date_from=1970-01-01&date_to=2026-01-01")
    assert time.perf_counter() - started < 0.5
    assert _field(answer) == "date_from"
    assert "3660 days (UMETRICS_MAX_REPORT_DAYS)" in answer.get_json()["error"]["message"]
    answer = client.get(f"{API}/query/volume?interval=day&date_from=0001-01-01&date_to=9999-12-31")
    assert _field(answer) == "date_from"


def test_hour_buckets_past_the_limit_name_the_interval(make_app: AppFactory) -> None:
    client = _app(make_app).test_client()
    # 5,000 hours (208 days 8 hours) is the limit: exactly that many buckets is fine.
    ok = client.get(
        f"{API}/query/volume?interval=hour&date_from=2025-01-01&date_to=2025-07-28T08:00"
    )
    assert ok.status_code == 200, ok.text
    assert len(ok.get_json()["series"]) == 5000
    over = client.get(
        f"{API}/query/volume?interval=hour&date_from=2025-01-01&date_to=2025-07-28T09:00"
    )
    assert _field(over) == "interval"
    assert "more than 5000 hour buckets" in over.get_json()["error"]["message"]
    # The same range by day is 209 buckets.
    by_day = client.get(f"{API}/query/volume?interval=day&date_from=2025-01-01&date_to=2025-07-28")
    assert len(by_day.get_json()["series"]) == 208


@pytest.mark.parametrize("route", ROUTES_WITH_A_RANGE)
def test_every_report_refuses_a_range_past_the_day_limit(make_app: AppFactory, route: str) -> None:
    client = _app(make_app).test_client()
    answer = client.get(f"{API}{route}" + ("" if "from=" in route else LONG_RANGE))
    assert _field(answer) == "date_from", route
    adhoc = client.post(
        f"{API}/query",
        json={"select": ["event"], "date_from": "2010-01-01", "date_to": "2026-01-01"},
    )
    assert _field(adhoc) == "date_from"


def test_the_limits_are_settings(make_app: AppFactory) -> None:
    client = _app(
        make_app, UMETRICS_MAX_REPORT_DAYS=7, UMETRICS_MAX_REPORT_BUCKETS=24
    ).test_client()
    assert (
        client.get(f"{API}/query/volume?date_from=2026-03-01&date_to=2026-03-08").status_code == 200
    )
    assert _field(client.get(f"{API}/query/volume?date_from=2026-03-01&date_to=2026-03-09")) == (
        "date_from"
    )
    hours = "interval=hour&date_from=2026-03-01&date_to=2026-03-02"
    assert len(client.get(f"{API}/query/volume?{hours}").get_json()["series"]) == 24
    assert _field(client.get(f"{API}/query/volume?{hours}T01:00")) == "interval"
    # Retention: the periods after the last cohort count against the limit too.
    retention = client.get(
        f"{API}/query/retention?period=day&periods=20&date_from=2026-03-01&date_to=2026-03-06"
    )
    assert _field(retention) == "period"


def test_breakdowns_and_retention_tables_are_capped_in_cells(make_app: AppFactory) -> None:
    app = _app(make_app)
    load(app, [("a", "view", "2026-03-02T10:00", {"plan": "pro"})])
    client = app.test_client()
    # 100 values + "$other" over 1,000 days: 101,000 points > 20 x 5,000.
    wide = "breakdown=plan&breakdown_limit=100&date_from=2023-06-01&date_to=2026-02-25"
    answer = client.get(f"{API}/query/trends?{wide}")
    assert _field(answer) == "breakdown_limit"
    assert "101000 points, more than 100000" in answer.get_json()["error"]["message"]
    narrow = "breakdown=plan&breakdown_limit=100&date_from=2026-03-01&date_to=2026-03-04"
    series = client.get(f"{API}/query/trends?{narrow}").get_json()["results"]
    assert [(s["breakdown_value"], s["total"]) for s in series] == [("pro", 1.0)]
    assert _field(client.get(f"{API}/query/trends?breakdown=plan&breakdown_limit=101")) == (
        "breakdown_limit"
    )
    # 2,000 daily cohorts x 53 periods = 106,000 cells.
    table = "period=day&periods=52&date_from=2020-01-01&date_to=2025-06-23"
    assert _field(client.get(f"{API}/query/retention?{table}")) == "periods"
    assert _field(client.get(f"{API}/query/paths?steps=21")) == "steps"
    assert _field(client.get(f"{API}/query/paths?limit=101")) == "limit"


def test_the_dashboard_shows_the_limit_as_a_400_page(make_app: AppFactory) -> None:
    client = _app(make_app).test_client()
    page = client.get(
        "/umetrics/admin/events?event=view&interval=hour&date_from=2025-01-01&date_to=2026-01-01"
    )
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "more than 5000 hour buckets" in page.text


def test_paths_with_twenty_steps_stay_fast(make_app: AppFactory) -> None:
    """300 persons x 30 events: 20 steps took ~1.5 s on SQLite when the start of each path was
    joined back to the rows (quadratic); now one window pass (~0.05 s)."""
    app = _app(make_app)
    names = "abcdefgh"
    rows = [
        (
            f"p{p}",
            names[(p * 7 + i * 3 + i // 5) % 8],
            f"2026-03-01T{i // 60:02d}:{i % 60:02d}:{p % 60:02d}",
        )
        for p in range(300)
        for i in range(30)
    ]
    load(app, rows)
    client = app.test_client()
    started = time.perf_counter()
    answer = client.get(
        f"{API}/query/paths?steps=20&limit=100&date_from=2026-03-01&date_to=2026-03-02"
    )
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    steps = answer.get_json()["steps"]
    assert len(steps) == 20
    # Every person has 30 collapsed events, so every step has 300 persons' transitions.
    assert all(sum(t["persons"] for t in step["transitions"]) == 300 for step in steps)
    assert elapsed < 0.5, elapsed


# --- the statement timeout --------------------------------------------------------------------


@contextmanager
def _slow_report_connection() -> Iterator[Connection]:
    """The real report connection, running a slow statement before the report's own."""
    with report_connection() as connection:
        connection.execute(text(SLOW_SQL)).scalar_one()
        yield connection


def test_a_slow_report_answers_503_query_timeout_and_the_pool_survives(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(make_app, UMETRICS_QUERY_TIMEOUT_SECONDS=0.05)
    load(app, [("a", "view", "2026-03-02T10:00"), ("b", "view", "2026-03-03T10:00")])
    client = app.test_client()
    monkeypatch.setattr(trends_module, "report_connection", _slow_report_connection)
    started = time.perf_counter()
    answer = client.get(f"{API}/query/volume?date_from=2026-03-01&date_to=2026-03-04")
    assert time.perf_counter() - started < 2
    assert answer.status_code == 503, answer.text
    assert answer.get_json()["error"]["code"] == "query_timeout"
    assert answer.headers["Retry-After"] == "1"
    togo = client.get(f"{API}/analytics/volume?from=2026-03-01&to=2026-03-04")
    assert togo.status_code == 503 and togo.get_json()["error"]["code"] == "query_timeout"
    page = client.get("/umetrics/admin/events?event=view&date_from=2026-03-01&date_to=2026-03-04")
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "Report timed out" in page.text and page.headers["Retry-After"] == "1"
    # Not an outage: the database answered. The same pooled connections serve the next report.
    monkeypatch.undo()
    for _ in range(3):
        again = client.get(f"{API}/query/volume?date_from=2026-03-01&date_to=2026-03-04")
        assert [p["count"] for p in again.get_json()["series"]] == [0, 1, 1]
    with app.app_context(), current_state().engine.connect() as connection:
        if connection.dialect.name == "postgresql":  # SET LOCAL ended with the transaction
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar_one() == "0"


def test_the_timeout_applies_to_report_connections_only(make_app: AppFactory) -> None:
    app = _app(make_app, UMETRICS_QUERY_TIMEOUT_SECONDS=0.05)
    with app.app_context():
        with pytest.raises(QueryTimeout) as caught, report_connection() as connection:
            connection.execute(text(SLOW_SQL)).scalar_one()
        assert caught.value.seconds == 0.05
        # A statement that takes longer than 0.05 s on a plain connection runs to the end.
        medium = SLOW_SQL.replace("20000000", "400000")
        with current_state().engine.connect() as connection:
            started = time.perf_counter()
            assert connection.execute(text(medium)).scalar_one() == 400000
            assert time.perf_counter() - started > 0.05
        with report_connection() as connection:  # the report connection works after a timeout
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
    # Ingestion is not a report: a batch is written whatever the report timeout.
    assert load(app, [(f"p{i}", "view", "2026-03-02T10:00") for i in range(500)]) == 500


def test_zero_switches_the_timeout_off(make_app: AppFactory) -> None:
    app = _app(make_app, UMETRICS_QUERY_TIMEOUT_SECONDS=0)
    medium = SLOW_SQL.replace("20000000", "400000")
    with app.app_context(), report_connection() as connection:
        assert connection.execute(text(medium)).scalar_one() == 400000
        if connection.dialect.name == "postgresql":
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar_one() == "0"
