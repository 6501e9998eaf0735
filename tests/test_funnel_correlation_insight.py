"""Funnel correlation as a saved insight: it answers what its route answers, and its dashboard
tile draws the events by odds ratio, opening the Funnels page that shows the same table."""

from __future__ import annotations

import html
import json
import re

import pytest
from flask import Flask

from flask_umetrics import create_dashboard, create_insight, insight_result
from flask_umetrics.errors import ValidationError

from .admin_html import table_cells
from .conftest import AppFactory
from .events_data import load
from .test_admin_access import keyed_client
from .test_funnel_correlation import JOURNEYS

pytestmark = pytest.mark.event_stores

PARAMS = {
    "step": ["signup", "buy"],
    "window": 3600,
    "date_from": "2026-03-01",
    "date_to": "2026-03-08",
}


def test_saved_correlation_answers_the_route_and_draws_a_tile(make_app: AppFactory) -> None:
    app: Flask = make_app(SECRET_KEY="test-secret")
    load(app, JOURNEYS)
    with app.app_context():
        insight = create_insight(
            "funnel_correlation", {**PARAMS, "exclude_events": ["share"]}, name="Predictors"
        )
        answer = insight_result(insight.id)
        tile = create_dashboard("Board", tiles=[{"insight_id": insight.id, "width": 12}])
        with pytest.raises(ValidationError) as error:
            create_insight("funnel_correlation", {**PARAMS, "limit": 0}, name="Bad")
        assert error.value.field == "params.limit"
    # tests/test_funnel_correlation.py: video (2, 0) predicts conversion, help (0, 2) drop-off.
    assert [(e["event"], e["success_count"], e["failure_count"]) for e in answer["events"]] == [
        ("video", 2, 0),
        ("help", 0, 2),
    ]
    assert (answer["success_total"], answer["failure_total"]) == (3, 3)
    client = keyed_client(app, "default", "metrics.view")
    query = "&".join(
        [*(f"step={s}" for s in PARAMS["step"]), "window=3600", "exclude_events=share"]
        + [f"{k}={PARAMS[k]}" for k in ("date_from", "date_to")]
    )
    route = client.get(f"/umetrics/api/query/funnel/correlation?{query}")
    assert route.status_code == 200 and route.json == answer
    page = client.get(f"/umetrics/admin/dashboards/{tile.id}").get_data(as_text=True)
    assert "um-error" not in page
    key = f"tile-{tile.tiles[0].id}"
    rows = table_cells(page, key)
    assert rows == [["video (conversion)", "6"], ["help (drop-off)", "0.17"]]
    spec = re.search(
        rf'id="chart-{key}".*?<script type="application/json" class="um-chart-spec">(.*?)</script>',
        page,
        re.S,
    )
    assert spec is not None
    drawn = json.loads(html.unescape(spec.group(1)))
    assert drawn["kind"] == "hbar"
    assert drawn["datasets"][0]["data"] == [6.0, pytest.approx(1 / 6)]
    (link,) = re.findall(r'<a href="([^"]+)" class="um-csv">Open report</a>', page)
    report = client.get(html.unescape(link)).get_data(as_text=True)
    assert "/umetrics/admin/funnels?" in html.unescape(link)
    # The Funnels page runs the same correlation (the saved exclude_events included).
    assert [r[0] for r in table_cells(report, "funnel-correlation")] == ["video", "help"]
