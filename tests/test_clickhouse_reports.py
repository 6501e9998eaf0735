"""A report not ported to ClickHouse (``CLICKHOUSE_NOT_PORTED`` in tests/conftest.py) answers
501 ``not_available_on_clickhouse`` naming it; never numbers computed from the (empty) SQL events
table, never a 500. Ported, so answered from ClickHouse: volume, trends, top,
active, sessions, live, cohorts, dashboard, retention, paths, timeline, people search,
experiment metrics and results, attribution, funnels, the ad-hoc query."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_umetrics import UMetrics, track
from flask_umetrics.errors import NotAvailableOnClickHouse
from flask_umetrics.events.collectors import events_today
from flask_umetrics.queries.connection import report_connection
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.sessions import session_summary
from flask_umetrics.queries.top import top_events

from .conftest import AppFactory, allow_all

API = "/umetrics/api"
DAY = "date_from=2026-03-01&date_to=2026-03-08"


@pytest.fixture
def app(make_clickhouse_app: AppFactory) -> Flask:
    extension = UMetrics()
    allow_all(extension)
    app = make_clickhouse_app(extension, UMETRICS_TRACK_SYNC=True, SECRET_KEY="ch-reports")
    with app.app_context():
        track("signup", distinct_id="d")  # an event in ClickHouse: the SQL table has none
    return app


def test_a_report_without_a_clickhouse_path_answers_501_naming_itself(app: Flask) -> None:
    """Every report is ported today; the guard stays for the next one: opening the SQL report
    connection on a ClickHouse store raises the 501 error naming the calling report."""
    with (
        app.app_context(),
        pytest.raises(NotAvailableOnClickHouse) as raised,
        report_connection(),
    ):
        pass  # pragma: no cover - never reached
    error = raised.value
    assert error.status == 501 and error.code == "not_available_on_clickhouse"
    assert error.details == {
        "feature": f"The {__name__.rsplit('.', 1)[-1]} report".replace("_", " "),
        "event_store": "clickhouse",
    }


def test_the_adhoc_query_is_answered_from_clickhouse(app: Flask) -> None:
    """Ported: no 501 (the numbers are checked by tests/test_adhoc_query.py[clickhouse])."""
    response = app.test_client().post(
        f"{API}/query", json={"select": [{"expr": "event"}, {"expr": "count()"}]}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["rows"] == [["signup", 1]]


def test_the_funnel_is_answered_from_clickhouse(app: Flask) -> None:
    """Ported: the REST answer and the dashboard page count the signup stored in ClickHouse
    (the numbers are checked by tests/test_funnel.py[clickhouse])."""
    response = app.test_client().get(f"{API}/query/funnel?step=signup&step=paid")
    assert response.status_code == 200, response.get_json()
    assert [s["count"] for s in response.get_json()["steps"]] == [1, 0]
    page = app.test_client().get("/umetrics/admin/funnels?step=signup&step=paid")
    assert page.status_code == 200
    assert "not available on the ClickHouse event store" not in page.get_data(as_text=True)


def test_python_calls_raise_the_same_error(app: Flask) -> None:
    with app.app_context():
        # Ported: answered from ClickHouse (the event tracked above), no 501.
        assert [(i.key, i.count) for i in top_events(report_context()).items] == [("signup", 1)]
        assert session_summary(report_context()).count == 1
        assert events_today("default") == 1.0


def test_experiment_results_are_answered_from_clickhouse(app: Flask) -> None:
    """Ported: no 501 (the numbers are checked by tests/test_flags_results.py[clickhouse])."""
    from flask_umetrics.flags.store import create_experiment

    with app.app_context():
        create_experiment({"key": "exp", "variants": [{"key": "a"}, {"key": "b"}]})
    response = app.test_client().get(f"{API}/experiments/exp/results")
    assert response.status_code == 200, response.get_json()


def test_the_largest_funnels_fit_in_one_statement(app: Flask) -> None:
    """20 steps, 19 of one name: in ``any`` order with six differently filtered definitions
    (63 sets of definitions spelled out), and ``ordered``: the statement stays within
    ClickHouse's query size and query tree limits, and counts exactly."""
    from flask_umetrics.queries.filters import PropertyFilter
    from flask_umetrics.queries.funnel import FunnelStep, funnel

    with app.app_context():
        track("view", distinct_id="d", properties={"k": 1})
        ctx = report_context()
        filtered = [FunnelStep("view", (PropertyFilter(key="k", value=i % 6),)) for i in range(19)]
        anyway = funnel(ctx, [FunnelStep("signup"), *filtered], order="any")
        ordered = funnel(ctx, [FunnelStep("signup"), *[FunnelStep("view")] * 19])
    assert [s.count for s in anyway.steps] == [1, 1] + [0] * 18
    assert [s.count for s in ordered.steps] == [1, 1] + [0] * 18


def test_the_openapi_document_promises_no_501_for_a_report(app: Flask) -> None:
    """Every report has its ClickHouse path, so no report route lists a 501 (only the GA4
    routes do, for their optional libraries) and nothing names ``not_available_on_clickhouse``."""
    document = app.test_client().get(f"{API}/openapi.json").get_json()
    with_501 = {
        path
        for path, operations in document["paths"].items()
        for operation in operations.values()
        if "501" in operation.get("responses", {})
    }
    assert with_501 and all(path.startswith(f"{API}/ga4") for path in with_501), with_501
    assert "not_available_on_clickhouse" not in str(document)
