"""Counts are integers in the REST JSON (``"count": 7``, not ``7.0``): an exact count is an int,
an average stays a float, and a sampled report's scaled-up estimate may be a float (issue 14)."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask

from flask_umetrics import UMetrics

from .conftest import AppFactory, allow_all
from .events_data import load

ROWS = [
    ("a", "view", "2026-03-01T10:00", {"price": 3}),
    ("a", "view", "2026-03-01T10:05", {"price": 4}),
    ("b", "view", "2026-03-02T12:00", {"price": 2}),
    ("b", "buy", "2026-03-02T12:10", {"$referrer": "https://www.google.com/"}),
]
RANGE = "date_from=2026-03-01&date_to=2026-03-04"


def _get(app: Flask, path: str) -> Any:
    response = app.test_client().get(f"/umetrics/api{path}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return json.loads(response.get_data(as_text=True))


def _app(make_app: AppFactory) -> Flask:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, ROWS)
    return app


def _types(values: list[Any]) -> set[type]:
    return {type(value) for value in values}


def test_exact_counts_are_integers(make_app: AppFactory) -> None:
    app = _app(make_app)
    dashboard = _get(app, f"/query/dashboard?{RANGE}")
    counts = [dashboard[k] for k in ("total_events", "dau", "wau", "mau", "new_persons")]
    assert counts == [4, 0, 2, 2, 2]  # the DAU of Mar 3, the range's last day: nobody
    assert _types(counts) == {int}
    assert _types([dashboard["sessions"]] + [i["count"] for i in dashboard["top_events"]]) == {int}

    trends = _get(app, f"/query/trends?{RANGE}&event=view&interval=day")["results"][0]
    assert [p["value"] for p in trends["series"]] == [2, 1, 0] and trends["total"] == 3
    assert _types([p["value"] for p in trends["series"]] + [trends["total"]]) == {int}

    active = _get(app, f"/query/active?{RANGE}&series=dau")["series"]
    assert [p["value"] for p in active] == [1, 1, 0]
    assert _types([p["value"] for p in active]) == {int}

    sessions = _get(app, f"/query/sessions?{RANGE}")
    assert sessions["count"] == 2 and type(sessions["count"]) is int

    attribution = _get(app, f"/query/attribution?{RANGE}&conversion_event=buy")
    assert attribution["conversions"] == 1 and type(attribution["conversions"]) is int
    assert [(r["key"], r["conversions"]) for r in attribution["rows"]] == [("organic_search", 1)]
    assert type(attribution["rows"][0]["conversions"]) is int


def test_averages_stay_floats(make_app: AppFactory) -> None:
    app = _app(make_app)
    trends = _get(app, f"/query/trends?{RANGE}&event=view&interval=day&math=avg&property=price")
    values = [p["value"] for p in trends["results"][0]["series"]]
    assert values == [3.5, 2.0, 0.0] and _types(values) == {float}
