"""The date-range control and "Compare with previous period" in Chromium on the demo data: pick
"Last 7 days" and compare on the Events and Funnels pages, and read the REST API's numbers for
this and for the previous 7 days."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from flask_umetrics.queries.relative_dates import local_today
from flask_umetrics.state import current_state

from .conftest import LiveApp, login, number, screenshot, table_rows

ADMIN = "/umetrics/admin"
API = "/umetrics/api"
STEPS = ["$pageview", "signed_up", "note_created", "plan_upgraded"]


def _query(params: list[tuple[str, str]]) -> str:
    return urlencode([("scope_id", "acme"), *params])


def _last_week_and_before(page: Page) -> None:
    """Choose "Last 7 days", tick the comparison and apply the form."""
    page.select_option("[data-testid='select-date_range']", label="Last 7 days")
    page.check("[data-testid='compare-previous']")
    page.click("form.um-range button[type=submit]")
    page.wait_for_load_state()
    assert "date_range=-7d" in page.url and "compare=previous" in page.url
    expect(page.locator("[data-testid='select-date_range']")).to_have_value("-7d")
    expect(page.locator("[data-testid='compare-previous']")).to_be_checked()


def test_events_last_7_days_compared(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(f"{live_app.url}{ADMIN}/events?{_query([('event', '$pageview')])}")
    _last_week_and_before(page)
    answer = live_app.api(
        f"{API}/query/trends?"
        + _query([("event", "$pageview"), ("date_range", "-7d"), ("compare", "previous")])
    )
    now, before = answer["results"][0]["total"], answer["previous"]["results"][0]["total"]
    assert now > 0 and before > 0
    [row] = table_rows(page, "trends-compare")
    assert [number(row[1]), number(row[2])] == [now, before]
    assert row[3] == f"{(now - before) / before * 100:+.1f}%"
    points = table_rows(page, "trends")
    assert [number(p[1]) for p in points] == [p["value"] for p in answer["results"][0]["series"]]
    assert [number(p[2]) for p in points] == [
        p["value"] for p in answer["previous"]["results"][0]["series"]
    ]
    expect(page.locator("[data-testid='chart-trends'] canvas[data-drawn]")).to_have_count(1)
    screenshot(page, "events-compare")


def test_funnel_last_7_days_compared(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    steps = [("step", step) for step in STEPS]
    page.goto(f"{live_app.url}{ADMIN}/funnels?{_query(steps)}")
    _last_week_and_before(page)
    with live_app.app.app_context():
        today = local_today(ZoneInfo(current_state().settings.timezone))
    now = live_app.api(f"{API}/query/funnel?{_query([*steps, ('date_range', '-7d')])}")
    previous_range = [
        ("date_from", (today - timedelta(days=13)).isoformat()),
        ("date_to", (today - timedelta(days=6)).isoformat()),
    ]
    before = live_app.api(f"{API}/query/funnel?{_query([*steps, *previous_range])}")
    rows = table_rows(page, "funnel-compare")
    assert [[number(r[1]), number(r[2])] for r in rows[:-1]] == [
        [a["count"], b["count"]] for a, b in zip(now["steps"], before["steps"], strict=True)
    ]
    assert now["steps"][0]["count"] > 0 and before["steps"][0]["count"] > 0
    overall = now["steps"][-1]["conversion_from_start"]
    earlier = before["steps"][-1]["conversion_from_start"]
    assert rows[-1][0] == "Overall conversion"
    assert rows[-1][3] == f"{(overall - earlier) * 100:+.1f} pts"
    note = page.text_content("[data-testid='previous']") or ""
    assert note.startswith("(previous ") and "pts)" in note
    expect(page.locator("[data-testid='chart-funnel'] canvas[data-drawn]")).to_have_count(1)
    screenshot(page, "funnel-compare")
