"""Dashboard summary: each headline number on hand-built events, before and after a merge."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_umetrics import UMetrics, identify
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.dashboard import DashboardSummary, dashboard_summary

from .conftest import AppFactory, allow_all
from .events_data import at, load

pytestmark = pytest.mark.event_stores

ROWS = [
    ("a", "view", "2026-03-01T10:00"),  # a's first event ever: a is new
    ("a", "view", "2026-03-03T10:00"),
    ("b", "view", "2026-02-20T12:00"),  # b was seen before the range
    ("b", "click", "2026-03-03T11:00"),
    ("c", "email_sent", "2026-03-03T12:00", None, False),  # new, but never active
    ("d", "view", "2026-03-04T00:00"),  # at date_to: outside
    ("e", "view", "2026-02-26T12:00"),  # in WAU and MAU of Mar 3 (Feb 25 .. Mar 3)
    ("f", "view", "2026-02-10T12:00"),  # in MAU of Mar 3 only (Feb 2 .. Mar 3)
    ("g", "view", "2026-03-02T09:00"),  # new (and active), until merged into b
]


def summary(app: Flask) -> DashboardSummary:
    with app.app_context():
        return dashboard_summary(
            report_context(date_from=at("2026-03-01"), date_to=at("2026-03-04"))
        )


def test_dashboard_numbers(app: Flask) -> None:
    load(app, ROWS)
    before = summary(app)
    # WAU(Mar 3): a, b, e, g; MAU(Mar 3): those and f.
    assert (before.total_events, before.dau, before.wau, before.mau) == (5, 2, 4, 5)
    assert (before.new_persons, before.sessions) == (3, 4)
    assert [(i.key, i.count) for i in before.top_events] == [
        ("view", 3),
        ("click", 1),
        ("email_sent", 1),
    ]
    with app.app_context():
        identify("b", anon_id="g")  # g's events now belong to b, first seen in February
    after = summary(app)
    assert (after.total_events, after.dau, after.wau, after.mau) == (5, 2, 3, 4)
    assert (after.new_persons, after.sessions) == (2, 4)


def test_dashboard_of_a_range_without_events(app: Flask) -> None:
    load(app, ROWS)
    with app.app_context():
        empty = dashboard_summary(
            report_context(date_from=at("2026-04-01"), date_to=at("2026-04-02"))
        )
    # MAU(Apr 1) looks back 30 days (Mar 3 .. Apr 1): a, b and d; everything else is empty.
    assert empty == DashboardSummary(0, 0, 0, 3, 0, 0, [])


def test_top_events_are_cut_at_five(app: Flask) -> None:
    load(app, [("a", f"e{i}", f"2026-03-01T10:0{i}") for i in range(7)])
    with app.app_context():
        result = dashboard_summary(
            report_context(date_from=at("2026-03-01"), date_to=at("2026-03-02"))
        )
    assert [i.key for i in result.top_events] == ["e0", "e1", "e2", "e3", "e4"]
    assert (result.total_events, result.dau, result.new_persons, result.sessions) == (7, 1, 1, 1)


def test_dashboard_route(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, ROWS)
    answer = app.test_client().get(
        "/umetrics/api/query/dashboard?date_from=2026-03-01&date_to=2026-03-04"
    )
    assert answer.json == {
        "total_events": 5,
        "dau": 2,
        "wau": 4,
        "mau": 5,
        "new_persons": 3,
        "sessions": 4,
        "top_events": [
            {"key": "view", "count": 3},
            {"key": "click", "count": 1},
            {"key": "email_sent", "count": 1},
        ],
        "sampled": None,
    }
