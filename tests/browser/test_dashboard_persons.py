"""The persons behind a number in Chromium: a funnel with an exclusion, a click on a bar, the
list of persons (and a retention cell's), each equal to the REST API's answer."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from playwright.sync_api import Page

from .conftest import LiveApp, click_bar, login, number, screenshot

ADMIN = "/umetrics/admin"
API = "/umetrics/api"
STEPS = ["$pageview", "signed_up", "note_created"]
EXCLUDE = json.dumps([{"event": "plan_upgraded", "from_step": 1, "to_step": 2}])


def _query(params: list[tuple[str, str]]) -> str:
    return urlencode([("scope_id", "acme"), *params])


def test_click_a_funnel_bar_to_see_its_persons(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    params = [*(("step", s) for s in STEPS), ("exclude", EXCLUDE)]
    page.goto(f"{live_app.url}{ADMIN}/funnels?{_query(params)}")
    answer = live_app.api(f"{API}/query/funnel?{_query(params)}")
    assert answer["exclusions"][0]["event"] == "plan_upgraded"
    assert page.text_content("[data-testid='funnel-exclusion']") == "plan_upgraded"
    counts = [step["count"] for step in answer["steps"]]
    assert counts[1] > 0
    screenshot(page, "funnel-persons-links")
    click_bar(page, "funnel", 1)  # the second bar, where Chart.js drew it
    page.wait_for_url("**/persons-behind/funnel*")
    shown = number(page.text_content("[data-testid='persons-total']") or "")
    assert shown == counts[1]
    listed = live_app.api(
        f"{API}/query/funnel/persons?{_query([*params, ('funnel_step', '2'), ('limit', '200')])}"
    )
    assert listed["total"] == counts[1]
    first_page = page.eval_on_selector_all(
        "[data-testid='person-link']", "links => links.map(a => a.textContent.trim())"
    )
    assert first_page == [p["distinct_ids"][0] for p in listed["persons"][:50]]
    screenshot(page, "funnel-persons-list")
    # The drop-offs before step 2 add up with those who reached it.
    page.goto(f"{live_app.url}{ADMIN}/funnels?{_query(params)}")
    page.click("[data-testid='funnel-dropoff-persons'] >> nth=0")
    page.wait_for_load_state()
    dropped = number(page.text_content("[data-testid='persons-total']") or "")
    assert dropped + counts[1] == counts[0]


def test_click_a_funnel_breakdown_bar_to_see_that_groups_persons(
    page: Page, live_app: LiveApp
) -> None:
    login(page, live_app)
    params = [*(("step", s) for s in STEPS), ("breakdown", "$browser"), ("breakdown_limit", "3")]
    page.goto(f"{live_app.url}{ADMIN}/funnels?{_query(params)}")
    answer = live_app.api(f"{API}/query/funnel?{_query(params)}")
    group = answer["breakdowns"][1]  # the second group's second bar
    assert group["steps"][1]["count"] > 0
    screenshot(page, "funnel-breakdown-persons-links")
    click_bar(page, "funnel-breakdown", 1, dataset=1)
    page.wait_for_url("**/persons-behind/funnel*")
    shown = number(page.text_content("[data-testid='persons-total']") or "")
    assert shown == group["steps"][1]["count"]
    assert f"$browser = {group['value']}" in (page.text_content("h1") or "")
    picked = [*params, ("breakdown_value", group["value"]), ("funnel_step", "2")]
    listed = live_app.api(f"{API}/query/funnel/persons?{_query([*picked, ('limit', '200')])}")
    assert listed["total"] == shown
    first_page = page.eval_on_selector_all(
        "[data-testid='person-link']", "links => links.map(a => a.textContent.trim())"
    )
    assert first_page == [p["distinct_ids"][0] for p in listed["persons"][:50]]
    screenshot(page, "funnel-breakdown-persons-list")


def test_retention_cell_lists_its_persons(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    params = [("period", "week"), ("start_event", "signed_up"), ("return_event", "note_created")]
    page.goto(f"{live_app.url}{ADMIN}/retention?{_query(params)}")
    cells = page.locator("[data-testid='retention-cell-persons']")
    shown = [number(t) for t in cells.locator(".um-count").all_text_contents()]
    hrefs = cells.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    # A cell after column 0 with somebody in it.
    index = next(
        i for i, n in enumerate(shown) if n > 0 and not re.search(r"period=0(&|$)", hrefs[i])
    )
    count = shown[index]
    cells.nth(index).click()
    page.wait_for_url("**/persons-behind/retention*")
    assert number(page.text_content("[data-testid='persons-total']") or "") == count
    screenshot(page, "retention-persons-list")
