"""The overview page in Chromium: its numbers are the REST API's, its charts are drawn."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from flask_umetrics import flush, track

from .conftest import LiveApp, login, number, screenshot, table_rows


def test_overview_numbers_match_the_api(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(live_app.url + "/umetrics/admin/")
    summary = live_app.api("/umetrics/api/query/dashboard?scope_id=acme")
    for key in ("total_events", "dau", "wau", "mau", "new_persons", "sessions"):
        shown = page.text_content(f"[data-testid='kpi-{key}']") or ""
        assert number(shown) == summary[key], key

    stats = live_app.api("/umetrics/api/stats?scope_id=acme")
    users = next(c for c in stats["collectors"] if c["key"] == "users_total")
    shown_users = page.get_attribute("[data-testid='stat-value-users_total']", "data-value")
    assert float(shown_users or "nan") == users["latest"]["value"] == 60.0

    top = [[row[0], number(row[1])] for row in table_rows(page, "top-events")]
    assert top == [[item["key"], item["count"]] for item in summary["top_events"]]

    # Chart.js drew every chart (a canvas gets its pixel size from the library).
    expect(page.locator("canvas[data-drawn]").nth(3)).to_be_attached()
    screenshot(page, "overview")


def test_live_feed_updates_without_reload(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(live_app.url + "/umetrics/admin/")
    before = number(page.text_content("#um-live-count") or "0")
    with live_app.app.app_context():
        track("live_probe", distinct_id="probe-1", scope_id="acme")
        flush()
    expect(page.locator("#um-live tbody")).to_contain_text("live_probe", timeout=15_000)
    assert number(page.text_content("#um-live-count") or "0") == before + 1
    # The refreshed row's distinct id opens its person, as the server-rendered rows do.
    probe = page.locator("#um-live tbody tr", has_text="live_probe").locator("a")
    expect(probe).to_have_text("probe-1")
    assert probe.get_attribute("href") == "/umetrics/admin/person?distinct_id=probe-1"
    probe.click()
    page.wait_for_load_state()
    expect(page.locator("h1")).to_have_text("Person probe-1")


def test_without_metrics_view_every_page_is_403(page: Page, live_app: LiveApp) -> None:
    page.goto(live_app.url + "/signup")
    page.fill("#name", "Nora Viewer")
    page.fill("#email", "nora@example.org")
    page.fill("#password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    for path in ("/", "/events", "/funnels", "/retention", "/people", "/experiments"):
        response = page.goto(live_app.url + "/umetrics/admin" + path)
        assert response is not None and response.status == 403, path
        assert "metrics.view" in (page.text_content("[data-testid='error-message']") or "")
