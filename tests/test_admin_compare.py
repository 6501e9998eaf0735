"""Every report page's date-range control and "Compare with previous period", with Flask's test
client on hand-built events: each preset is accepted, and the previous numbers are exact.

The range is 2026-03-03 to 2026-03-05 (two days); its previous period is 03-01 to 03-03:
previously 3 persons viewed and 1 signed up (33.3%); now 4 viewed and 2 signed up (50%).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_umetrics import UMetrics, list_insights
from flask_umetrics.admin.date_presets import PRESETS

from .admin_html import table_cells
from .conftest import AppFactory
from .events_data import load
from .test_admin_access import csrf_from_page, keyed_client

pytestmark = pytest.mark.event_stores

ADMIN = "/umetrics/admin"
RANGE = "date_from=2026-03-03&date_to=2026-03-05&compare=previous"
ROWS = [
    ("p1", "view", "2026-03-01T10:00", {"plan": "pro"}, None, "s1"),
    ("p1", "signup", "2026-03-01T11:00", {"plan": "pro"}, None, "s1"),
    ("p2", "view", "2026-03-02T10:00", {"plan": "free"}, None, "s2"),
    ("p3", "view", "2026-03-02T12:00", {"plan": "free"}, None, "s3"),
    ("p4", "view", "2026-03-03T10:00", {"plan": "pro"}, None, "s4"),
    ("p4", "signup", "2026-03-03T10:30", {"plan": "pro"}, None, "s4"),
    ("p5", "view", "2026-03-04T09:00", {"plan": "pro"}, None, "s5"),
    ("p5", "signup", "2026-03-04T09:05", {"plan": "pro"}, None, "s5"),
    ("p6", "view", "2026-03-04T11:00", {"plan": "free"}, None, "s6"),
    ("p7", "view", "2026-03-04T15:00", {"plan": "free"}, None, "s7"),
]
#: Every report page with the parameters it needs to show a report.
PAGES = {
    "events": "event=view",
    "funnels": "step=view&step=signup",
    "retention": "period=day&start_event=view&return_event=view",
    "lifecycle": "event=view",
    "stickiness": "event=view",
    "paths": "",
    "attribution": "conversion_event=signup",
    "": "",
}


@pytest.fixture
def client(make_app: AppFactory) -> FlaskClient:
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: permission == "metrics.view")
    extension.subject_loader(lambda: ("viewer", {}))
    app: Flask = make_app(extension, SECRET_KEY="test-secret")
    load(app, ROWS)
    return app.test_client()


def _page(client: FlaskClient, path: str) -> str:
    answer = client.get(f"{ADMIN}{path}")
    assert answer.status_code == 200, (path, answer.text[:2000])
    return answer.get_data(as_text=True)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_page_accepts_every_preset_with_compare(client: FlaskClient, page: str) -> None:
    for label, token in PRESETS:
        html = _page(client, f"/{page}?{PAGES[page]}&date_range={token}&compare=previous")
        assert f'<option value="{token}" ' in html and f" selected>{label}</option>" in html
        assert 'name="compare" value="previous" checked' in html, (page, token)
    # a preset wins over dates a form sent along; custom dates alone select "Custom dates"
    html = _page(client, f"/{page}?{PAGES[page]}&date_range=-7d&date_from=2026-01-01")
    assert " selected>Last 7 days</option>" in html
    html = _page(client, f"/{page}?{PAGES[page]}&date_from=2026-03-03&date_to=2026-03-05")
    assert '<option value="" selected>Custom dates</option>' in html


def test_a_bad_preset_is_named_next_to_the_form(client: FlaskClient) -> None:
    answer = client.get(f"{ADMIN}/events?event=view&date_range=soon")
    assert answer.status_code == 400
    assert "date_range" in answer.get_data(as_text=True)


def test_events_compare_with_the_previous_period(client: FlaskClient) -> None:
    html = _page(client, f"/events?event=view&{RANGE}")
    assert table_cells(html, "trends-compare") == [["Total events", "4", "3", "+33.3%"]]
    rows = table_cells(html, "trends")
    assert rows == [["2026-03-03", "1", "1"], ["2026-03-04", "3", "2"]]
    assert '"dashed": true' in html
    without = _page(client, "/events?event=view&date_from=2026-03-03&date_to=2026-03-05")
    assert "trends-compare" not in without and '"dashed"' not in without


def test_funnel_compare_with_the_previous_period(client: FlaskClient) -> None:
    html = _page(client, f"/funnels?step=view&step=signup&{RANGE}")
    assert table_cells(html, "funnel-compare") == [
        ["1. view", "4", "3", "+33.3%"],
        ["2. signup", "2", "1", "+100.0%"],
        ["Overall conversion", "50%", "33.3%", "+16.7 pts"],
    ]
    assert "(previous 33.3%, +16.7 pts)" in html
    csv_text = client.get(
        f"{ADMIN}/funnels?step=view&step=signup&{RANGE}&format=csv&table=funnel-compare"
    ).get_data(as_text=True)
    assert list(csv.reader(io.StringIO(csv_text)))[-1] == [
        "Overall conversion",
        "50%",
        "33.3%",
        "'+16.7 pts",  # a leading + is quoted against spreadsheet formulas
    ]
    steps = table_cells(html, "funnel")
    assert [row[0] for row in steps] == ["1. view", "2. signup"]
    assert [row[-1] for row in steps] == ["3", "1"]  # count (previous)


def test_funnel_trends_compare_with_the_previous_period(client: FlaskClient) -> None:
    """Now: 03-03 p4 enters and converts, 03-04 p5-p7 enter and p5 converts (2 of 4); before:
    03-01 p1 (1 of 1), 03-02 p2 and p3 (0 of 2): 1 of 3."""
    html = _page(client, f"/funnels?step=view&step=signup&mode=trends&interval=day&{RANGE}")
    assert table_cells(html, "funnel-compare") == [
        ["Entered", "4", "3", "+33.3%"],
        ["Converted", "2", "1", "+100.0%"],
        ["Overall conversion", "50%", "33.3%", "+16.7 pts"],
    ]
    rows = table_cells(html, "funnel-trends")
    assert [[row[0], row[-1]] for row in rows] == [["2026-03-03", "100%"], ["2026-03-04", "0%"]]
    assert '"dashed": true' in html


def test_funnel_time_to_convert_compares_with_the_previous_period(client: FlaskClient) -> None:
    """Now p4 converts in 30 min and p5 in 5 min; before, p1 in an hour."""
    html = _page(client, f"/funnels?step=view&step=signup&mode=time_to_convert&{RANGE}")
    assert table_cells(html, "funnel-compare") == [
        ["Converted", "2", "1", "+100.0%"],
        ["Average time", "17 min 30 s", "1 h", "-70.8%"],
        ["Median time", "17 min 30 s", "1 h", "-70.8%"],
    ]


def _compare(client: FlaskClient, path: str, key: str) -> list[list[str]]:
    return table_cells(_page(client, f"{path}&{RANGE}"), f"{key}-compare")


def test_lifecycle_and_stickiness_compare_through_the_route(client: FlaskClient) -> None:
    # now: p4 new on 03-03, p5-p7 new on 03-04; p2, p3 dormant on 03-03, p4 on 03-04
    assert _compare(client, "/lifecycle?event=view", "lifecycle") == [
        ["New", "4", "3", "+33.3%"],
        ["Returning", "0", "0", ""],
        ["Resurrecting", "0", "0", ""],
        ["Dormant", "3", "1", "+200.0%"],
    ]
    assert _compare(client, "/stickiness?event=view", "stickiness") == [
        ["Persons", "4", "3", "+33.3%"],
        ["1 day", "4", "3", "+33.3%"],  # "2 days": nobody in either range, not listed
    ]


def test_retention_paths_attribution_overview_compare(client: FlaskClient) -> None:
    retention = _compare(
        client, "/retention?period=day&start_event=view&return_event=view", "retention"
    )
    assert retention[0] == ["Persons in cohorts", "4", "3", "+33.3%"]
    assert retention[1] == ["Day 1 retained", "0%", "0%", "+0.0 pts"]
    paths = _compare(client, "/paths?steps=2", "paths")
    assert ["Step 1: view → signup", "2", "1", "+100.0%"] in paths
    attribution = _compare(client, "/attribution?conversion_event=signup", "attribution")
    assert attribution[0] == ["Conversions", "2", "1", "+100.0%"]
    assert ["Direct", "2", "1", "+100.0%"] in attribution
    summary = {row[0]: row[1:] for row in _compare(client, "/?x=1", "summary")}
    assert summary == {  # active persons as of the last day of each range
        "Events": ["6", "4", "+50.0%"],
        "Daily active users": ["3", "2", "+50.0%"],  # 03-04: p5-p7; 03-02: p2, p3
        "Weekly active users": ["7", "3", "+133.3%"],
        "Monthly active users": ["7", "3", "+133.3%"],
        "New persons": ["4", "3", "+33.3%"],
        "Sessions": ["4", "3", "+33.3%"],
    }


def test_events_series_and_formula_compared(client: FlaskClient) -> None:
    series = quote('[{"event": "signup"}, {"event": "view"}]')
    html = _page(client, f"/events?series={series}&formula=A/B*100&{RANGE}")
    assert "Formula A/B*100" in html
    # signups per 100 views: 03-03 1/1, 03-04 1/3; before: 03-01 1/1, 03-02 0/2
    assert table_cells(html, "trends") == [
        ["2026-03-03", "100", "100"],
        ["2026-03-04", "33.33", "0"],
    ]
    html = _page(client, f"/events?series={series}&{RANGE}")
    assert table_cells(html, "trends-compare") == [
        ["A: signup (Total events)", "2", "1", "+100.0%"],
        ["B: view (Total events)", "4", "3", "+33.3%"],
    ]
    bad = client.get(f"{ADMIN}/events?series=nope&{RANGE}")
    assert bad.status_code == 400 and "series" in bad.get_data(as_text=True)


def test_a_trend_tile_saved_with_compare_draws_the_previous_period(make_app: AppFactory) -> None:
    app = make_app(SECRET_KEY="test-secret")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    load(app, [("a", "signup", (now - timedelta(days=3)).isoformat())])
    manager = keyed_client(app, "default", "metrics.manage")
    token = csrf_from_page(manager)
    params = json.dumps({"event": "signup", "date_range": "-3d", "compare": "previous"})
    data = {"csrf_token": token}
    insight_form = {**data, "name": "T", "kind": "trends", "params": params}
    manager.post(f"{ADMIN}/insights", data=insight_form)
    board = manager.post(f"{ADMIN}/dashboards", data={**data, "name": "Board"})
    base = board.headers["Location"].split("?")[0].split("/admin", 1)[1]
    with app.app_context():
        [insight] = list_insights()
    manager.post(f"{ADMIN}{base}/tiles", data={**data, "insight_id": insight.id, "width": 6})
    page = _page(manager, base)
    # the previous 3 days (5 to 3 days ago) hold a's signup on their last day
    previous = '"dashed": true, "data": [0, 0, 1], "label": "Total events (previous)"'
    assert previous in page
