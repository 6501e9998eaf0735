"""The Annotations page (list, add, delete with CSRF-checked forms; a viewer only reads) and
the markers every time-series chart of the dashboard gets for the annotations in its range."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_umetrics.annotations import create_annotation, list_annotations

from .conftest import AppFactory
from .events_data import load
from .test_admin_access import csrf_from_page, keyed_client

ADMIN = "/umetrics/admin"
RANGE = "date_from=2026-03-02&date_to=2026-03-04"
SPEC = re.compile(r'<script type="application/json" class="um-chart-spec">(.*?)</script>', re.S)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.fixture
def site(make_app: AppFactory) -> Flask:
    """Berlin (UTC+1 in March), with views on 2 and 3 March."""
    app = make_app(SECRET_KEY="test-secret", UMETRICS_TIMEZONE="Europe/Berlin")
    load(
        app,
        [
            ("a", "view", "2026-03-02T08:00", {"$current_url": "https://x.test/"}),
            ("b", "view", "2026-03-03T08:00", {"$current_url": "https://x.test/"}),
        ],
    )
    return app


def specs(client: FlaskClient, path: str) -> list[dict[str, Any]]:
    answer = client.get(ADMIN + path)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return [json.loads(text) for text in SPEC.findall(answer.get_data(as_text=True))]


def test_a_manager_adds_and_deletes_a_viewer_reads(site: Flask) -> None:
    manager = keyed_client(site, "default", "metrics.manage")
    token = csrf_from_page(manager)
    added = manager.post(
        f"{ADMIN}/annotations",
        data={"csrf_token": token, "occurs_at": "2026-03-02T12:30", "text": "v2.3 released"},
    )
    assert added.status_code == 302
    with site.app_context():
        [note] = list_annotations()
    assert note.occurs_at == at("2026-03-02T11:30")  # the form is in the app's zone
    page = manager.get(f"{ADMIN}/annotations").get_data(as_text=True)
    assert "v2.3 released" in page and ">2026-03-02 12:30</time>" in page
    assert 'data-testid="add-annotation"' in page
    assert f'/annotations/{note.id}/delete"' in page
    viewer = keyed_client(site, "default", "metrics.view")
    seen = viewer.get(f"{ADMIN}/annotations").get_data(as_text=True)
    assert "v2.3 released" in seen
    assert 'data-testid="add-annotation"' not in seen and "/delete" not in seen
    refused = viewer.post(f"{ADMIN}/annotations/{note.id}/delete", data={"csrf_token": token})
    assert refused.status_code == 403
    forged = manager.post(f"{ADMIN}/annotations/{note.id}/delete", data={})
    assert forged.status_code == 400
    deleted = manager.post(f"{ADMIN}/annotations/{note.id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 302
    again = manager.post(f"{ADMIN}/annotations/{note.id}/delete", data={"csrf_token": token})
    assert again.status_code == 404
    with site.app_context():
        assert list_annotations() == []
    assert "No annotations yet." in manager.get(f"{ADMIN}/annotations").get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"occurs_at": "", "text": "x"}, "occurs_at"),
        ({"occurs_at": "soon", "text": "x"}, "occurs_at"),
        ({"occurs_at": "2026-03-02T12:30", "text": "  "}, "text"),
        ({"occurs_at": "2026-03-02T12:30", "text": "x" * 401}, "text"),
    ],
)
def test_a_bad_form_is_a_400_naming_the_field(
    site: Flask, data: dict[str, str], field: str
) -> None:
    manager = keyed_client(site, "default", "metrics.manage")
    answer = manager.post(
        f"{ADMIN}/annotations", data={"csrf_token": csrf_from_page(manager), **data}
    )
    assert answer.status_code == 400
    assert f"{field}:" in answer.get_data(as_text=True)
    with site.app_context():
        assert list_annotations() == []


def test_time_series_charts_mark_the_annotations_in_their_range(site: Flask) -> None:
    with site.app_context():
        noon = create_annotation(at("2026-03-02T11:00"), "pricing page changed")  # 12:00 Berlin
        start = create_annotation(at("2026-03-02T23:00"), "v2.3 <released>")  # 3 Mar 00:00
        create_annotation(at("2026-03-01T22:59"), "before the range")  # 1 Mar 23:59 Berlin
        create_annotation(at("2026-03-02T11:00"), "another scope", scope_id="other")
    client = keyed_client(site, "default", "metrics.view")
    expected = [
        {"id": noon.id, "at": 0.5, "time": "2026-03-02T11:00:00+00:00",
         "text": "pricing page changed"},
        {"id": start.id, "at": 1.0, "time": "2026-03-02T23:00:00+00:00",
         "text": "v2.3 <released>"},
    ]  # fmt: skip
    [trends, _top] = specs(client, f"/events?{RANGE}")
    assert trends["labels"] == ["2026-03-02", "2026-03-03"]
    assert trends["annotations"] == expected
    assert "annotations" not in _top  # bars of a ranking have no time axis
    [lifecycle] = specs(client, f"/lifecycle?{RANGE}&event=view")
    assert len(lifecycle["labels"]) == 2 and lifecycle["annotations"] == expected
    [visitors] = specs(client, f"/web?{RANGE}")
    assert visitors["annotations"] == expected
    page = client.get(f"{ADMIN}/events?{RANGE}").get_data(as_text=True)
    listed = page.split('data-testid="annotations-trends"')[1].split("</ul>")[0]
    assert listed.count("<li>") == 2
    assert ">2026-03-02 12:00</time> · pricing page changed" in listed
    assert "v2.3 &lt;released&gt;" in listed
    hourly = specs(client, "/events?date_from=2026-03-02&date_to=2026-03-03&interval=hour")[0]
    assert [a["at"] for a in hourly["annotations"]] == [12.0]


def test_a_chart_without_annotations_in_range_has_none(site: Flask) -> None:
    with site.app_context():
        create_annotation(at("2026-02-01T00:00"), "long ago")
    client = keyed_client(site, "default", "metrics.view")
    [trends, _top] = specs(client, f"/events?{RANGE}")
    assert "annotations" not in trends
    assert 'data-testid="annotations-trends"' not in client.get(f"{ADMIN}/events?{RANGE}").get_data(
        as_text=True
    )


def test_the_overview_and_funnel_trends_mark_them_too(site: Flask) -> None:
    with site.app_context():
        noon = create_annotation(at("2026-03-03T11:00"), "launch")  # 3 Mar 12:00 Berlin
    client = keyed_client(site, "default", "metrics.view")
    mark = [{"id": noon.id, "at": 1.5, "time": "2026-03-03T11:00:00+00:00", "text": "launch"}]
    overview = {spec.get("kind"): spec for spec in specs(client, f"/?{RANGE}")}
    assert overview["line"]["labels"] == ["2026-03-02", "2026-03-03"]
    assert overview["line"]["annotations"] == mark
    funnel = specs(client, f"/funnels?{RANGE}&step=view&step=view&mode=trends&interval=day")
    [rate] = [spec for spec in funnel if spec.get("percent")]
    assert rate["annotations"] == mark
