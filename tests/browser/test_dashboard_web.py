"""The Web page in Chromium on the demo data: its numbers and tables are the REST API's answer,
the chart is drawn, bars are sized, and clicking a row filters everything (a chip)."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from playwright.sync_api import Page, expect

from flask_umetrics.queries.attribution import channel_label

from .conftest import LiveApp, login, number, screenshot, table_rows

ADMIN = "/umetrics/admin"
API = "/umetrics/api"
QUERY = urlencode({"scope_id": "acme"})


def _check_page(page: Page, answer: dict) -> None:  # type: ignore[type-arg]
    for key in ("visitors", "pageviews", "sessions"):
        shown = page.get_by_test_id(f"web-value-{key}")
        assert number(shown.get_attribute("data-value") or "") == answer["totals"][key], key
        assert number(shown.inner_text()) == answer["totals"][key], key
    for key in ("pages", "entry_pages", "channels", "browsers", "device_types"):
        # Channels show their labels (the API's keys are the library's names).
        label = channel_label if key == "channels" else str
        expected = [
            [label(row["key"]), row["visitors"], row["pageviews"]]
            for row in answer["breakdowns"][key]
        ]
        shown = [[r[0], number(r[1]), number(r[2])] for r in table_rows(page, key)]
        assert shown == expected, key


def test_web_matches_the_api_and_filters_by_a_row(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(f"{live_app.url}{ADMIN}/web?{QUERY}")
    answer = live_app.api(f"{API}/query/web?{QUERY}")
    assert answer["totals"]["visitors"] > 0 and answer["breakdowns"]["browsers"]
    _check_page(page, answer)
    expect(page.locator("canvas[data-drawn]")).to_have_count(1)
    top_bar = page.locator("[data-testid='table-pages'] .um-web-bar").first
    expect(top_bar).to_have_attribute("data-share", "100.0")
    assert top_bar.evaluate("bar => bar.style.width") == "100%"
    channels = [r[0] for r in table_rows(page, "channels")]
    assert channels and all("_" not in name and name[0].isupper() for name in channels)
    screenshot(page, "web")

    browser = answer["breakdowns"]["browsers"][0]["key"]
    page.locator("[data-testid='table-browsers'] a", has_text=browser).first.click()
    page.wait_for_load_state()
    expect(page.get_by_test_id("web-chip")).to_contain_text(f"$browser = {browser}")
    chosen = json.dumps([{"key": "$browser", "op": "eq", "value": browser}])
    filtered = live_app.api(f"{API}/query/web?{QUERY}&filters={quote(chosen)}")
    assert filtered["totals"]["pageviews"] < answer["totals"]["pageviews"]
    assert [row["key"] for row in filtered["breakdowns"]["browsers"]] == [browser]
    _check_page(page, filtered)
    screenshot(page, "web-filtered")

    page.get_by_test_id("web-chip").click()
    page.wait_for_load_state()
    expect(page.get_by_test_id("web-chip")).to_have_count(0)
    _check_page(page, answer)
