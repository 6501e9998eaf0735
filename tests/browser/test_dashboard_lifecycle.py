"""Lifecycle and Stickiness pages in Chromium on the demo data: every number is the REST API's
answer, the chart is drawn, and a click on a bar lists the persons behind it."""

from __future__ import annotations

from urllib.parse import urlencode

from playwright.sync_api import Page, expect

from .conftest import LiveApp, click_bar, login, number, screenshot, table_rows

ADMIN = "/umetrics/admin"
API = "/umetrics/api"


def _query(params: list[tuple[str, str]]) -> str:
    return urlencode([("scope_id", "acme"), *params])


def test_lifecycle_matches_the_api(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    params = [("interval", "week")]
    page.goto(f"{live_app.url}{ADMIN}/lifecycle?{_query(params)}")
    answer = live_app.api(f"{API}/query/lifecycle?{_query(params)}")
    periods = answer["periods"]
    assert sum(p["active"] for p in periods) > 0
    rows = table_rows(page, "lifecycle")
    assert [[number(cell) for cell in row[1:]] for row in rows] == [
        [p["new"], p["returning"], p["resurrecting"], p["dormant"], p["active"]] for p in periods
    ]
    expect(page.locator("canvas[data-drawn]")).to_have_count(1)
    screenshot(page, "lifecycle")
    # The returning persons (the second dataset) of the busiest such period.
    index = max(range(len(periods)), key=lambda i: periods[i]["returning"])
    click_bar(page, "lifecycle", index, dataset=1)
    page.wait_for_url("**/persons-behind/lifecycle*")
    picked = [("time", periods[index]["time"]), ("status", "returning"), ("limit", "200")]
    listed = live_app.api(f"{API}/query/lifecycle/persons?{_query([*params, *picked])}")
    shown = number(page.text_content("[data-testid=persons-total]") or "")
    assert shown == listed["total"] == periods[index]["returning"] > 0


def test_stickiness_matches_the_api(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(f"{live_app.url}{ADMIN}/stickiness?{_query([])}")
    page.select_option("select[name=event]", "$pageview")
    page.click("form.um-range button[type=submit]")
    page.wait_for_load_state()
    answer = live_app.api(f"{API}/query/stickiness?{_query([('event', '$pageview')])}")
    rows = table_rows(page, "stickiness")
    assert [number(row[1]) for row in rows] == [b["persons"] for b in answer["bars"]]
    assert sum(b["persons"] for b in answer["bars"]) == answer["persons"] > 0
    expect(page.locator("canvas[data-drawn]")).to_have_count(1)
    screenshot(page, "stickiness")
    click_bar(page, "stickiness", 0)  # the persons who did it on exactly one day
    page.wait_for_url("**/persons-behind/stickiness*")
    picked = [("event", "$pageview"), ("periods", "1"), ("limit", "200")]
    listed = live_app.api(f"{API}/query/stickiness/persons?{_query(picked)}")
    shown = number(page.text_content("[data-testid=persons-total]") or "")
    assert shown == listed["total"] == answer["bars"][0]["persons"] > 0
    expect(page.locator("h1")).to_have_text("Persons who did it in exactly 1 day")
