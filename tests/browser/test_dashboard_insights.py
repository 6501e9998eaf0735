"""Saved insights and dashboards in Chromium: a funnel and a trend saved from their report
pages, put on a new dashboard, show after a reload the numbers the REST API answers; the demo
ships its "Product" and "Web" dashboards."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from playwright.sync_api import Page, expect

from .conftest import LiveApp, click_bar, login, number, screenshot, table_rows

ADMIN = "/umetrics/admin"
API = "/umetrics/api"
FUNNEL = ["$pageview", "signed_up", "note_created"]
#: Between signing up and the first note (0-based steps 1 and 2): upgrading the plan.
EXCLUDE = {"event": "plan_upgraded", "from_step": 1, "to_step": 2}


def _look(page: Page, name: str) -> None:
    """A picture to look at while working (never a README picture: those are the demo's)."""
    folder = Path(tempfile.gettempdir()) / "umetrics-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _save_as_insight(page: Page, name: str, picture: str | None = None) -> None:
    page.click("[data-testid=save-insight] summary")
    page.fill("[data-testid=insight-name]", name)
    if picture:
        _look(page, picture)
    page.click("[data-testid=save-insight-button]")
    page.wait_for_load_state()


def _tile_numbers(page: Page, tile: dict[str, Any]) -> list[float]:
    """The tile's numbers as its table shows them (second column: counts, values)."""
    return [number(row[1]) for row in table_rows(page, f"tile-{tile['id']}")]


def test_the_demo_ships_product_and_web_dashboards(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    boards = {d["name"]: d for d in live_app.api(f"{API}/dashboards?scope_id=acme")["dashboards"]}
    assert {"Product", "Web"} <= set(boards)
    web = boards["Web"]
    names = [t["insight"]["name"] for t in web["tiles"]]
    assert names[:5] == ["Page views", "Sessions", "Top pages", "Referrers", "UTM sources"]
    for name in ("Product", "Web"):
        page.goto(f"{live_app.url}{ADMIN}/dashboards/{boards[name]['id']}?scope_id=acme")
        tiles = boards[name]["tiles"]
        expect(page.locator("[data-testid^=tile-]")).to_have_count(len(tiles))
        expect(page.locator(".um-tile .um-error")).to_have_count(0)
        screenshot(page, f"dashboard-{name.lower()}")
    answer = live_app.api(f"{API}/dashboards/{web['id']}?scope_id=acme&results=true")
    top_pages = answer["tiles"][2]
    shown = [[row[0], number(row[1])] for row in table_rows(page, f"tile-{top_pages['id']}")]
    assert shown == [[i["key"], i["count"]] for i in top_pages["result"]["items"]]
    sessions = answer["tiles"][1]["result"]
    shown_sessions = page.locator(f"[data-testid=numbers-tile-{answer['tiles'][1]['id']}] dd")
    assert number(shown_sessions.first.inner_text()) == sessions["count"]


def test_a_saved_funnel_and_trend_on_a_new_dashboard_match_rest(
    page: Page, live_app: LiveApp
) -> None:
    login(page, live_app)
    # A funnel built on the Funnels page with an exclusion step typed into its form, saved as
    # an insight.
    query = urlencode([("scope_id", "acme"), *(("step", s) for s in FUNNEL)])
    page.goto(f"{live_app.url}{ADMIN}/funnels?{query}")
    page.fill("[data-testid=funnel-exclude]", json.dumps([EXCLUDE]))
    page.click("form.um-range button[type=submit]")
    page.wait_for_load_state()
    expect(page.locator("[data-testid=funnel-exclusion]")).to_have_text(EXCLUDE["event"])
    _save_as_insight(page, "Browser funnel", "funnel-save-insight")
    expect(page.locator(".um-flash")).to_contain_text("Saved insight")
    _look(page, "insights")
    page.goto(f"{live_app.url}{ADMIN}/events?scope_id=acme&event=signed_up")
    _save_as_insight(page, "Browser sign-ups")
    insights = {i["name"]: i for i in live_app.api(f"{API}/insights?scope_id=acme")["insights"]}
    assert insights["Browser funnel"]["params"] == {
        "step": [{"event": e} for e in FUNNEL],
        "exclude": [EXCLUDE],
        # The form's untouched controls (window, order, mode, ...) are the route's defaults:
        # not saved.
        "date_range": "-30d",  # the page's default range, kept relative
    }
    assert insights["Browser sign-ups"]["kind"] == "trends"

    page.goto(f"{live_app.url}{ADMIN}/dashboards?scope_id=acme")
    page.fill("[data-testid=dashboard-name]", "Browser board")
    page.click("[data-testid=create-dashboard]")
    page.wait_for_load_state()
    dashboard_id = int(re.search(r"/dashboards/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    for name, width in (("Browser funnel", "full"), ("Browser sign-ups", "half")):
        page.select_option("[data-testid=add-tile-insight]", value=str(insights[name]["id"]))
        page.select_option("form:has([data-testid=add-tile]) select[name=width]", label=width)
        page.click("[data-testid=add-tile]")
        page.wait_for_load_state()

    page.reload()
    board = live_app.api(f"{API}/dashboards/{dashboard_id}?scope_id=acme&results=true")
    funnel_tile, trend_tile = board["tiles"]
    assert (funnel_tile["width"], trend_tile["width"]) == (12, 6)
    expect(page.locator("[data-testid=tile-0] canvas[data-drawn]")).to_have_count(1)
    expect(page.locator("[data-testid=tile-1] canvas[data-drawn]")).to_have_count(1)
    counts = [step["count"] for step in funnel_tile["result"]["steps"]]
    assert _tile_numbers(page, funnel_tile) == counts
    assert counts[0] > counts[-1] > 0
    series = trend_tile["result"]["results"][0]["series"]
    assert _tile_numbers(page, trend_tile) == [point["value"] for point in series]
    rest = live_app.api(f"{API}/insights/{insights['Browser funnel']['id']}/result?scope_id=acme")
    assert rest == funnel_tile["result"]
    assert [{k: x[k] for k in EXCLUDE} for x in rest["exclusions"]] == [EXCLUDE]
    plain = live_app.api(f"{API}/query/funnel?{query}&date_range=-30d")
    assert all(
        p["count"] >= c for p, c in zip(plain["steps"], counts, strict=True)
    )  # the exclusion only drops attempts
    _look(page, "dashboard-new")

    # A click on the funnel's second bar (on the Funnels page, where the insight was built)
    # opens the persons behind it: as many as the tile shows, the ones REST lists.
    funnel_page = urlencode([("exclude", json.dumps([EXCLUDE])), ("date_range", "-30d")])
    page.goto(f"{live_app.url}{ADMIN}/funnels?{query}&{funnel_page}")
    expect(page.locator("#chart-funnel canvas[data-drawn]")).to_have_count(1)
    click_bar(page, "funnel", 1)
    page.wait_for_url("**/persons-behind/funnel*")
    assert number(page.text_content("[data-testid=persons-total]") or "") == counts[1]
    listed = live_app.api(
        f"{API}/query/funnel/persons?{query}&{funnel_page}&funnel_step=2&limit=200"
    )
    assert listed["total"] == counts[1]
    shown_ids = page.eval_on_selector_all(
        "[data-testid=person-link]", "links => links.map(a => a.textContent.trim())"
    )
    assert shown_ids == [p["distinct_ids"][0] for p in listed["persons"][:50]]
    _look(page, "dashboard-funnel-persons")
    page.goto(f"{live_app.url}{ADMIN}/dashboards/{dashboard_id}?scope_id=acme")

    # A dashboard-wide preset replaces each tile's range: "Last 7 days" = REST's -7d.
    page.click("[data-testid=dashboard-presets] >> text=Last 7 days")
    page.wait_for_load_state()
    week = live_app.api(
        f"{API}/dashboards/{dashboard_id}?scope_id=acme&results=true&date_range=-7d"
    )
    week_series = week["tiles"][1]["result"]["results"][0]["series"]
    assert _tile_numbers(page, week["tiles"][1]) == [p["value"] for p in week_series]
    assert len(week_series) == 7

    # Reorder, then remove: the REST answer follows.
    page.click("[data-testid=tile-1] button[value=up]")
    page.wait_for_load_state()
    order = live_app.api(f"{API}/dashboards/{dashboard_id}?scope_id=acme")["tiles"]
    assert [t["insight"]["name"] for t in order] == ["Browser sign-ups", "Browser funnel"]
    page.click("[data-testid=tile-0] [data-testid=remove-tile]")
    page.wait_for_load_state()
    left = live_app.api(f"{API}/dashboards/{dashboard_id}?scope_id=acme")["tiles"]
    assert [t["insight"]["name"] for t in left] == ["Browser funnel"]
