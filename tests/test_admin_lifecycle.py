"""The Lifecycle and Stickiness dashboard pages with Flask's test client, on hand-built events:
who may see them, the chart's numbers (dormant below zero) and CSV, bad input next to the form."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from flask import Flask

from flask_umetrics import UMetrics

from .conftest import AppFactory
from .events_data import load

pytestmark = pytest.mark.event_stores

ADMIN = "/umetrics/admin"
RANGE = "date_from=2026-03-02&date_to=2026-03-04"
ROWS = [
    ("a", "view", "2026-03-01T10:00"),  # before the range: returning on Mar 2
    ("a", "view", "2026-03-02T10:00", {"plan": "pro"}),
    ("b", "view", "2026-03-02T11:00", {"plan": "free"}),  # new, then dormant on Mar 3
    ("a", "view", "2026-03-03T12:00", {"plan": "pro"}),
]


def _app(make_app: AppFactory, *, allowed: set[str]) -> Flask:
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: permission in allowed)
    extension.subject_loader(lambda: ("viewer", {}))
    app = make_app(extension, SECRET_KEY="test-secret")
    load(app, ROWS)
    return app


def _spec(page: str) -> dict:  # type: ignore[type-arg]
    found = re.search(r'<script type="application/json" class="um-chart-spec">(.*?)</script>', page)
    assert found, page
    return json.loads(found.group(1))  # type: ignore[no-any-return]


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_pages_need_metrics_view(make_app: AppFactory) -> None:
    client = _app(make_app, allowed=set()).test_client()
    for path in ("/lifecycle", "/stickiness"):
        answer = client.get(f"{ADMIN}{path}?{RANGE}")
        assert answer.status_code == 403 and "metrics.view" in answer.text
        assert client.get(f"{ADMIN}{path}?{RANGE}&format=csv&table=x").status_code == 403


def test_lifecycle_page(make_app: AppFactory) -> None:
    client = _app(make_app, allowed={"metrics.view"}).test_client()
    answer = client.get(f"{ADMIN}/lifecycle?{RANGE}&event=view")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert 'data-testid="chart-lifecycle"' in page and 'href="/umetrics/admin/lifecycle"' in page
    spec = _spec(page)
    assert spec["kind"] == "bar" and spec["stacked"] is True
    assert spec["labels"] == ["2026-03-02", "2026-03-03"]
    assert {d["label"]: d["data"] for d in spec["datasets"]} == {
        "New": [1, 0],
        "Returning": [1, 1],
        "Resurrecting": [0, 0],
        "Dormant": [0, -1],  # drawn below zero
    }
    table = client.get(f"{ADMIN}/lifecycle?{RANGE}&format=csv&table=lifecycle")
    assert _csv(table.get_data(as_text=True)) == [
        ["time", "new", "returning", "resurrecting", "dormant", "active"],
        ["2026-03-02T00:00:00+00:00", "1", "1", "0", "0", "2"],
        ["2026-03-03T00:00:00+00:00", "0", "1", "0", "1", "1"],
    ]
    pro = client.get(f"{ADMIN}/lifecycle?{RANGE}&filter_key=plan&filter_op=eq&filter_value=pro")
    assert {d["label"]: d["data"] for d in _spec(pro.get_data(as_text=True))["datasets"]} == {
        "New": [0, 0],
        "Returning": [0, 1],
        "Resurrecting": [1, 0],
        "Dormant": [0, 0],
    }
    bad = client.get(f"{ADMIN}/lifecycle?{RANGE}&interval=year")
    assert bad.status_code == 400 and "interval" in bad.get_data(as_text=True)


def test_stickiness_page(make_app: AppFactory) -> None:
    client = _app(make_app, allowed={"metrics.view"}).test_client()
    answer = client.get(f"{ADMIN}/stickiness?{RANGE}")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert 'data-testid="chart-stickiness"' in page and "Of the 2 persons" in page
    spec = _spec(page)
    assert spec["labels"] == ["1 day", "2 days"]
    assert spec["datasets"][0]["data"] == [1, 1]
    table = client.get(f"{ADMIN}/stickiness?{RANGE}&format=csv&table=stickiness")
    assert _csv(table.get_data(as_text=True)) == [
        ["periods", "persons"],
        ["1 day", "1"],
        ["2 days", "1"],
    ]
    bad = client.get(f"{ADMIN}/stickiness?{RANGE}&interval=year")
    assert bad.status_code == 400 and "interval" in bad.get_data(as_text=True)
