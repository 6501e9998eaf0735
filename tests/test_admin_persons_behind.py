"""The dashboard's persons lists: funnel steps and retention cells open the persons behind
them, and a list can be saved as a static segment."""

from __future__ import annotations

import html
import json
import re

import pytest
from flask import Flask

from flask_umetrics import UMetrics
from flask_umetrics.queries.segments import get_segment

from .admin_html import csrf_token, table_cells
from .conftest import AppFactory
from .events_data import load
from .test_funnel_exclusions import _load_cancellations
from .test_persons_behind import _load_plans

pytestmark = pytest.mark.event_stores

ADMIN = "/umetrics/admin"
FUNNEL = "date_from=2026-03-01&date_to=2026-03-02&step=signup&step=view&step=buy"


def _app(make_app: AppFactory, allowed: set[str]) -> Flask:
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: permission in allowed)
    extension.subject_loader(lambda: ("viewer", {}))
    return make_app(extension, SECRET_KEY="test-secret")


def _links(page: str, testid: str) -> list[str]:
    found = re.findall(rf'<a [^>]*href="([^"]+)"[^>]*data-testid="{testid}"', page)
    return [html.unescape(link) for link in found]


def _ids(page: str) -> list[str]:
    return sorted(row[0] for row in table_cells(page, "persons-behind") if len(row) > 1)


def test_funnel_steps_open_their_persons(make_app: AppFactory) -> None:
    app = _app(make_app, {"metrics.view"})
    _load_cancellations(app)
    client = app.test_client()
    page = client.get(f"{ADMIN}/funnels?{FUNNEL}").text
    reached = _links(page, "funnel-step-persons")
    dropped = _links(page, "funnel-dropoff-persons")
    assert len(reached) == 3 and len(dropped) == 2
    assert '"links": ["/umetrics/admin/persons-behind/funnel?' in html.unescape(page)
    lists = [client.get(link) for link in reached + dropped]
    assert all(answer.status_code == 200 for answer in lists)
    people = [_ids(answer.text) for answer in lists]
    assert people[:3] == [
        ["a", "b", "c", "d", "e", "f", "g"],
        ["a", "b", "c", "d", "f", "g"],
        ["a", "b", "c"],
    ]
    assert people[3] == ["e"] and people[4] == ["d", "f", "g"]
    assert "save-segment" not in lists[0].text  # metrics.view only: no save form
    # Each list names its step's event, not only its number.
    titles = [re.search(r"<h1>(.*?)</h1>", answer.text) for answer in lists]
    assert [html.unescape(t.group(1)) for t in titles if t] == [
        "Persons who reached funnel step 1 (signup)",
        "Persons who reached funnel step 2 (view)",
        "Persons who reached funnel step 3 (buy)",
        "Persons who dropped off before funnel step 2 (view)",
        "Persons who dropped off before funnel step 3 (buy)",
    ]


def _chart_links(page: str, key: str) -> list[list[str]]:
    found = re.search(
        rf'id="chart-{key}".*?<script type="application/json" class="um-chart-spec">(.*?)</script>',
        page,
        re.S,
    )
    assert found is not None, key
    return json.loads(html.unescape(found.group(1)))["links"]  # type: ignore[no-any-return]


def test_funnel_breakdown_bars_open_their_groups_persons(make_app: AppFactory) -> None:
    app = _app(make_app, {"metrics.view"})
    _load_plans(app)
    client = app.test_client()
    page = client.get(f"{ADMIN}/funnels?{FUNNEL}&breakdown=plan&breakdown_limit=2").text
    # Per group (pro, free, $other) and step: the group's persons (see _load_plans).
    links = _chart_links(page, "funnel-breakdown")
    people = [[_ids(client.get(link).text) for link in group] for group in links]
    assert people == [
        [["p1", "p2", "p3"], ["p1", "p2"], ["p1"]],
        [["p4", "p5"], ["p4"], ["p4"]],
        [["p6", "p7"], ["p6", "p7"], ["p7"]],
    ]
    assert _chart_links(page, "funnel-breakdown-conversion") == links
    title = client.get(links[2][0]).text
    assert "Persons who reached funnel step 1 (signup), plan = (other values)" in html.unescape(
        title
    )
    # The whole funnel's bars and links still open everybody at the step.
    whole = [_ids(client.get(link).text) for link in _chart_links(page, "funnel")]
    assert whole == [
        ["p1", "p2", "p3", "p4", "p5", "p6", "p7"],
        ["p1", "p2", "p4", "p6", "p7"],
        ["p1", "p4", "p7"],
    ]
    assert [_ids(client.get(link).text) for link in _links(page, "funnel-step-persons")] == whole


def test_retention_cells_open_their_persons(make_app: AppFactory) -> None:
    app = _app(make_app, {"metrics.view"})
    load(
        app,
        [
            ("a", "open", "2026-03-02T09:00"),
            ("a", "open", "2026-03-03T09:00"),
            ("b", "open", "2026-03-02T10:00"),
        ],
    )
    client = app.test_client()
    query = "date_from=2026-03-02&date_to=2026-03-04&period=day&periods=1"
    page = client.get(f"{ADMIN}/retention?{query}&start_event=open&return_event=open").text
    cells = _links(page, "retention-cell-persons")
    assert len(cells) == 4  # two cohorts x k = 0, 1
    first = client.get(cells[0])
    assert first.status_code == 200, first.text
    assert _ids(first.text) == ["a", "b"]
    assert _ids(client.get(cells[1]).text) == ["a"]


def test_save_the_list_as_a_static_segment(make_app: AppFactory) -> None:
    app = _app(make_app, {"metrics.view", "metrics.manage"})
    _load_cancellations(app)
    client = app.test_client()
    page = client.get(f"{ADMIN}/funnels?{FUNNEL}").text
    link = _links(page, "funnel-dropoff-persons")[1]
    listed = client.get(link).text
    assert "save-segment" in listed
    action = html.unescape(re.findall(r'action="([^"]+)"', listed)[0])
    answer = client.post(
        action,
        data={
            "csrf_token": csrf_token(listed),
            "segment_key": "dropped-at-buy",
            "segment_name": "",
        },
    )
    assert answer.status_code == 302, answer.text
    with app.app_context():
        segment = get_segment("dropped-at-buy")
        assert segment is not None and segment.kind == "static"
    refused = client.post(action, data={"segment_key": "x"})
    assert refused.status_code in (400, 403)


def test_trend_points_open_their_persons(make_app: AppFactory) -> None:
    app = _app(make_app, {"metrics.view"})
    load(
        app,
        [
            ("a", "signup", "2026-03-02T09:00", {"plan": "pro"}),
            ("b", "signup", "2026-03-02T10:00", {"plan": "free"}),
            ("a", "signup", "2026-03-03T09:00", {"plan": "pro"}),
        ],
    )
    client = app.test_client()
    query = "date_from=2026-03-02&date_to=2026-03-04&event=signup&breakdown=plan"
    page = html.unescape(client.get(f"{ADMIN}/events?{query}").text)
    spec = json.loads(re.findall(r'"links": (\[\[.*?\]\])', page)[0])
    assert len(spec) == 2 and all(len(series) == 2 for series in spec)  # 2 values x 2 days
    listed = {
        (i, j): _ids(client.get(link).text)
        for i, series in enumerate(spec)
        for j, link in enumerate(series)
    }
    assert sorted(listed.values()) == [[], ["a"], ["a"], ["b"]]


def test_lifecycle_and_stickiness_bars_open_their_persons(make_app: AppFactory) -> None:
    app = _app(make_app, {"metrics.view"})
    load(
        app,
        [
            ("a", "view", "2026-03-01T09:00"),
            ("a", "view", "2026-03-02T09:00"),  # returning on Mar 2
            ("b", "view", "2026-03-02T10:00"),  # new on Mar 2, dormant on Mar 3
            ("a", "view", "2026-03-03T09:00"),
        ],
    )
    client = app.test_client()
    query = "date_from=2026-03-02&date_to=2026-03-04&event=view"
    page = html.unescape(client.get(f"{ADMIN}/lifecycle?{query}").text)
    spec = json.loads(re.findall(r'"links": (\[\[.*?\]\])', page)[0])
    assert len(spec) == 4 and all(len(status) == 2 for status in spec)  # 4 statuses x 2 days
    listed = [[_ids(client.get(link).text) for link in status] for status in spec]
    assert listed == [[["b"], []], [["a"], ["a"]], [[], []], [[], ["b"]]]
    back = client.get(spec[0][0]).text
    assert "Lifecycle" in back and "New persons of the period" in html.unescape(back)
    page = html.unescape(client.get(f"{ADMIN}/stickiness?{query}").text)
    bars = json.loads(re.findall(r'"links": (\[".*?\])', page)[0])
    assert [_ids(client.get(link).text) for link in bars] == [["b"], ["a"]]
