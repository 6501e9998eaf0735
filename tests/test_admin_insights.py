"""The dashboard's insight and dashboard pages without a browser: "Save as insight" keeps what
the page ran (a preset as its relative range), tiles are added, moved, resized and removed with
forms, a viewer sees the grid without the controls, and the tiles show the REST numbers."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_umetrics import get_dashboard, list_insights
from flask_umetrics.admin.formatting import time_zone

from .conftest import AppFactory
from .events_data import load
from .test_admin_access import csrf_from_page, keyed_client

pytestmark = pytest.mark.event_stores

ADMIN = "/umetrics/admin"


@pytest.fixture
def site(make_app: AppFactory) -> Flask:
    app = make_app(SECRET_KEY="test-secret")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    load(
        app,
        [
            ("a", "signup", (now - timedelta(days=3)).isoformat()),
            ("a", "buy", (now - timedelta(days=3, minutes=-5)).isoformat()),
            ("b", "signup", (now - timedelta(days=2)).isoformat()),
        ],
    )
    return app


def _save_form(page: str) -> dict[str, str]:
    """The hidden kind and params of the page's "Save as insight" form."""
    kind = re.search(r'name="kind" value="([^"]+)"', page)
    params = re.search(r"name=\"params\" value='([^']+)'", page)
    assert kind and params, "no Save as insight form"
    return {"kind": kind.group(1), "params": params.group(1).replace("&#34;", '"')}


def _post(client: FlaskClient, path: str, token: str, **data: Any) -> Any:
    return client.post(f"{ADMIN}{path}", data={"csrf_token": token, **data})


def test_save_as_insight_keeps_the_page_query_and_a_preset_as_its_range(site: Flask) -> None:
    manager = keyed_client(site, "default", "metrics.manage")
    token = csrf_from_page(manager)
    today = datetime.now(time_zone()).date()
    week = f"date_from={today - timedelta(days=6)}&date_to={today + timedelta(days=1)}"
    page = manager.get(f"{ADMIN}/funnels?step=signup&step=buy&{week}").get_data(as_text=True)
    form = _save_form(page)
    assert form["kind"] == "funnel"
    assert json.loads(form["params"]) == {"step": ["signup", "buy"], "date_range": "-7d"}
    saved = _post(manager, "/insights", token, name="Buyers", **form)
    assert saved.status_code == 302
    with site.app_context():
        [insight] = list_insights()
    assert insight.params == {"step": [{"event": "signup"}, {"event": "buy"}], "date_range": "-7d"}
    fixed = manager.get(f"{ADMIN}/events?event=signup&date_from=2026-01-01&date_to=2026-01-09")
    assert json.loads(_save_form(fixed.get_data(as_text=True))["params"]) == {
        "event": "signup",
        "date_from": "2026-01-01",
        "date_to": "2026-01-09",
    }
    bad = _post(manager, "/insights", token, name="x", kind="trends", params='{"interval": "x"}')
    assert bad.status_code == 400 and "params.interval" in bad.get_data(as_text=True)


#: Every control of the Funnels form as a browser submits it untouched (the route's defaults).
FUNNEL_FORM_DEFAULTS: list[tuple[str, str]] = [
    ("window_value", "14"),
    ("window_unit", "days"),
    ("order", "ordered"),
    ("exclude", ""),
    ("breakdown", ""),
    ("breakdown_attribution", "entry"),
    ("breakdown_attribution_step", ""),
    ("mode", "steps"),
    ("interval", "day"),
    ("from_step", ""),
    ("to_step", ""),
    ("bins", ""),
]


def test_a_saved_funnel_keeps_only_what_differs_from_the_defaults(site: Flask) -> None:
    manager = keyed_client(site, "default", "metrics.manage")
    token = csrf_from_page(manager)
    steps = [("step", "signup"), ("step", "buy")]
    plain = manager.get(f"{ADMIN}/funnels", query_string=steps + FUNNEL_FORM_DEFAULTS)
    form = _save_form(plain.get_data(as_text=True))
    assert json.loads(form["params"]) == {"step": ["signup", "buy"], "date_range": "-30d"}
    # Chosen values are kept, the untouched controls still are not.
    chosen = dict(FUNNEL_FORM_DEFAULTS) | {
        "window_value": "2",
        "order": "strict",
        "breakdown": "plan",
        "breakdown_attribution": "last_touch",
    }
    page = manager.get(f"{ADMIN}/funnels", query_string=steps + list(chosen.items()))
    form = _save_form(page.get_data(as_text=True))
    expected = {
        "step": ["signup", "buy"],
        "window": "172800",
        "order": "strict",
        "breakdown": "plan",
        "breakdown_attribution": "last_touch",
        "date_range": "-30d",
    }
    assert json.loads(form["params"]) == expected
    assert _post(manager, "/insights", token, name="Strict", **form).status_code == 302
    with site.app_context():
        [insight] = list_insights()
    assert insight.params == {
        **expected,
        "step": [{"event": "signup"}, {"event": "buy"}],
        "window": 172800,
    }


def test_tiles_through_the_forms_and_what_a_viewer_sees(site: Flask) -> None:
    manager = keyed_client(site, "default", "metrics.manage")
    token = csrf_from_page(manager)
    params = json.dumps({"step": ["signup", "buy"], "date_range": "-7d"})
    _post(manager, "/insights", token, name="Funnel", kind="funnel", params=params)
    trend = json.dumps({"event": "signup", "date_range": "-7d"})
    _post(manager, "/insights", token, name="Trend", kind="trends", params=trend)
    created = _post(manager, "/dashboards", token, name="Board")
    assert created.status_code == 302
    board_id = int(created.headers["Location"].rsplit("/", 1)[-1].split("?")[0])
    with site.app_context():
        ids = {i.name: i.id for i in list_insights()}
    base = f"/dashboards/{board_id}"
    _post(manager, f"{base}/tiles", token, insight_id=ids["Funnel"], width=12, height=2)
    _post(manager, f"{base}/tiles", token, insight_id=ids["Trend"], width=4)
    _post(manager, f"{base}/tile", token, position=1, move="up")
    _post(manager, f"{base}/tile", token, position=1, width=6, height=3)

    def tiles() -> list[tuple[str, int, int]]:
        with site.app_context():
            board = get_dashboard(board_id)
        assert board is not None
        return [(t.insight.name, t.width, t.height) for t in board.tiles]

    assert tiles() == [("Trend", 4, 2), ("Funnel", 6, 3)]
    refused = _post(manager, f"{base}/tile", token, position=0, width=13)
    assert refused.status_code == 400 and "tiles.0.width" in refused.get_data(as_text=True)
    page = manager.get(f"{ADMIN}{base}").get_data(as_text=True)
    assert 'class="um-card um-tile um-w-6 um-h-3"' in page and 'data-testid="add-tile"' in page
    assert "style=" not in page
    viewer = keyed_client(site, "default", "metrics.view")
    seen = viewer.get(f"{ADMIN}{base}").get_data(as_text=True)
    assert "Funnel" in seen and "add-tile" not in seen and "remove-tile" not in seen
    rows = re.findall(r"<td>(\d+)\. (\w+)</td>\s*<td class=\"um-num\">(\d+)</td>", seen)
    assert [(event, int(count)) for _, event, count in rows] == [("signup", 2), ("buy", 1)]
    _post(manager, f"{base}/tile", token, position=0, remove="1")
    assert tiles() == [("Funnel", 6, 3)]
    assert _post(manager, f"{base}/delete", token).status_code == 302
    assert manager.get(f"{ADMIN}{base}").status_code == 404


def test_the_dashboard_wide_range_and_filter_are_saved_from_the_page(site: Flask) -> None:
    manager = keyed_client(site, "default", "metrics.manage")
    token = csrf_from_page(manager)
    created = _post(manager, "/dashboards", token, name="Board")
    board_id = int(created.headers["Location"].rsplit("/", 1)[-1].split("?")[0])
    query = "date_range=-30d&filter_key=plan&filter_op=eq&filter_value=pro"
    shown = manager.get(f"{ADMIN}/dashboards/{board_id}?{query}")
    assert shown.status_code == 200
    saved = manager.post(
        f"{ADMIN}/dashboards/{board_id}/settings?{query}", data={"csrf_token": token}
    )
    assert saved.status_code == 302
    with site.app_context():
        board = get_dashboard(board_id)
    assert board is not None
    assert (board.date_range, board.filters) == (
        "-30d",
        [{"key": "plan", "op": "eq", "value": "pro"}],
    )


def _board_of_every_insight(site: Flask, manager: FlaskClient, token: str) -> int:
    """A new dashboard with a half-width tile of every saved insight; its id."""
    created = _post(manager, "/dashboards", token, name="Board")
    board_id = int(created.headers["Location"].rsplit("/", 1)[-1].split("?")[0])
    with site.app_context():
        ids = [i.id for i in list_insights()]
    for insight_id in ids:
        added = _post(
            manager, f"/dashboards/{board_id}/tiles", token, insight_id=insight_id, width=6
        )
        assert added.status_code == 302, insight_id
    return board_id


def test_every_kind_draws_a_tile_and_lifecycle_stickiness_save_from_their_pages(
    site: Flask,
) -> None:
    from flask_umetrics.admin.tiles import TILE_BUILDERS
    from flask_umetrics.insights import INSIGHT_KINDS

    assert set(INSIGHT_KINDS) <= set(TILE_BUILDERS)
    manager = keyed_client(site, "default", "metrics.manage")
    token = csrf_from_page(manager)
    for kind in ("lifecycle", "stickiness"):
        page = manager.get(f"{ADMIN}/{kind}?event=signup").get_data(as_text=True)
        form = _save_form(page)
        assert form["kind"] == kind
        assert json.loads(form["params"]) == {"event": "signup", "date_range": "-30d"}
        assert _post(manager, "/insights", token, name=kind, **form).status_code == 302
    live = json.dumps({"minutes": 5})
    _post(manager, "/insights", token, name="live", kind="live", params=live)
    board_id = _board_of_every_insight(site, manager, token)
    page = manager.get(f"{ADMIN}/dashboards/{board_id}").get_data(as_text=True)
    assert "Persons per day by lifecycle status" in page
    assert "Persons by the number of days they did it on" in page
    assert "Events per minute" in page
    assert "um-error" not in page


def test_open_report_keeps_the_exclusion_and_opens_lifecycle_and_stickiness(site: Flask) -> None:
    import html

    manager = keyed_client(site, "default", "metrics.manage")
    token = csrf_from_page(manager)
    exclude = [{"event": "cancel", "from_step": 0, "to_step": 1}]
    params = json.dumps({"step": ["signup", "buy"], "exclude": exclude, "date_range": "-7d"})
    _post(manager, "/insights", token, name="Excluded", kind="funnel", params=params)
    for kind in ("lifecycle", "stickiness"):
        _post(manager, "/insights", token, name=kind, kind=kind, params='{"date_range": "-7d"}')
    page = manager.get(f"{ADMIN}/insights").get_data(as_text=True)
    links = [html.unescape(link) for link in re.findall(r'<a href="([^"]+)">Open report</a>', page)]
    assert len(links) == 3
    by_page = {link.split("?")[0].rsplit("/", 1)[-1]: link for link in links}
    assert set(by_page) == {"funnels", "lifecycle", "stickiness"}
    funnel = manager.get(by_page["funnels"]).get_data(as_text=True)
    assert 'data-testid="funnel-exclusion">cancel<' in funnel
    for name in ("lifecycle", "stickiness"):
        assert manager.get(by_page[name]).status_code == 200


def test_tile_bars_open_their_persons(site: Flask) -> None:
    import html

    from .admin_html import table_cells

    manager = keyed_client(site, "default", "metrics.manage")
    token = csrf_from_page(manager)
    exclude = [{"event": "cancel", "from_step": 0, "to_step": 1}]
    funnel = {"step": ["signup", "buy"], "exclude": exclude, "date_range": "-30d"}
    for kind, params in (
        ("funnel", funnel),
        ("lifecycle", {"event": "signup", "date_range": "-7d"}),
        ("stickiness", {"event": "signup", "date_range": "-7d"}),
    ):
        _post(manager, "/insights", token, name=kind, kind=kind, params=json.dumps(params))
    board_id = _board_of_every_insight(site, manager, token)
    page = html.unescape(manager.get(f"{ADMIN}/dashboards/{board_id}").get_data(as_text=True))
    specs = [
        json.loads(spec)
        for spec in re.findall(
            r'<script type="application/json" class="um-chart-spec">(.*?)</script>', page
        )
    ]
    funnel_links, lifecycle_links, stickiness_links = (spec["links"] for spec in specs)

    def listed(link: str) -> int:
        answer = manager.get(link)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        rows = table_cells(answer.get_data(as_text=True), "persons-behind")
        return len([row for row in rows if len(row) > 1])

    assert [listed(link) for link in funnel_links] == [2, 1]  # a and b sign up, a buys
    assert "exclude=" in funnel_links[0] and "cancel" in funnel_links[0]
    assert sum(listed(link) for link in lifecycle_links[0]) == 2  # a and b are new
    assert listed(stickiness_links[0]) == 2  # each signed up on one day


def test_attribution_and_top_values_tiles_open_their_reports_with_channel_labels(
    site: Flask,
) -> None:
    """An attribution tile names channels as the Attribution page does ("Direct", not
    ``direct``), and attribution and top-values insights link to the page that runs them."""
    import html

    manager = keyed_client(site, "default", "metrics.manage")
    token = csrf_from_page(manager)
    attribution = {"conversion_event": "signup", "date_range": "-30d"}
    top = {"event": "signup", "property": "$pathname", "date_range": "-30d"}
    for name, kind, params in (("Sign-ups", "attribution", attribution), ("Top", "top", top)):
        _post(manager, "/insights", token, name=name, kind=kind, params=json.dumps(params))
    page = html.unescape(manager.get(f"{ADMIN}/insights").get_data(as_text=True))
    specs = [
        json.loads(spec)
        for spec in re.findall(
            r'<script type="application/json" class="um-chart-spec">(.*?)</script>', page
        )
    ]
    # a and b signed up with no UTM tag or outside referrer: both count as Direct.
    assert specs[0]["labels"] == ["Direct"] and specs[0]["datasets"][0]["data"] == [2]
    links = re.findall(r'<a href="([^"]+)">Open report</a>', page)
    assert [link.split("?")[0] for link in links] == [
        f"{ADMIN}/attribution",
        f"{ADMIN}/events",
    ]
    assert "conversion_event=signup" in links[0] and "values_of=$pathname" in links[1]
    opened = manager.get(links[0]).get_data(as_text=True)
    assert re.search(r'name="conversion_event"[^>]* value="signup"', opened)
    assert 'data-testid="table-attribution"' in opened
    events = manager.get(links[1])
    assert events.status_code == 200
    assert 'value="$pathname"' in events.get_data(as_text=True)


def test_the_empty_pages_link_every_page_that_saves_an_insight(site: Flask) -> None:
    """A newcomer's insights page and new dashboard name, as links, each page whose "Save as
    insight" form fills them (Lifecycle and Stickiness have one too)."""
    manager = keyed_client(site, "default", "metrics.manage")
    token = csrf_from_page(manager)
    board = _post(manager, "/dashboards", token, name="Empty", description="")
    assert board.status_code == 302
    saving = ["events", "funnels", "retention", "lifecycle", "stickiness"]
    for path in ("/insights", board.headers["Location"].removeprefix(ADMIN)):
        page = manager.get(ADMIN + path).get_data(as_text=True)
        note = page.split("Save as insight</em> on the", 1)[1].split("</p>", 1)[0]
        assert re.findall(rf'href="{ADMIN}/(\w+)"', note)[:5] == saving, path
    for name in ("lifecycle", "stickiness"):
        assert "Save as insight" in manager.get(f"{ADMIN}/{name}").get_data(as_text=True)
