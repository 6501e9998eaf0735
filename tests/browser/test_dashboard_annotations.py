"""Annotations in Chromium on the demo data: added on the Annotations page, marked on the trends
chart as a dashed line (drawn pixels of its colour where the server placed it), a hover box
with its text, and deleted again."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from .conftest import LiveApp, login, screenshot

ADMIN = "/umetrics/admin"
API = "/umetrics/api"
TRENDS = f"{ADMIN}/events?scope_id=acme&event=signed_up&date_range=-30d&interval=day"

#: The marker's colour in admin.js (NOTE_COLOR), and how many of a column's pixels carry it.
PURPLE_PIXELS = """([x]) => {
  const canvas = document.querySelector("[data-testid=chart-trends] canvas");
  const chart = window.Chart.getChart(canvas);
  const ratio = canvas.width / canvas.clientWidth;
  const area = chart.chartArea;
  const top = Math.round(area.top * ratio);
  const height = Math.round((area.bottom - area.top) * ratio);
  const data = canvas.getContext("2d").getImageData(Math.round(x * ratio), top, 1, height).data;
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (Math.abs(data[i] - 107) < 30 && Math.abs(data[i + 1] - 79) < 30
        && Math.abs(data[i + 2] - 187) < 30) count += 1;
  }
  return count;
}"""
MARK_X = """([at]) => {
  const canvas = document.querySelector("[data-testid=chart-trends] canvas");
  const scale = window.Chart.getChart(canvas).scales.x;
  const i = Math.floor(at);
  const step = scale.getPixelForValue(1) - scale.getPixelForValue(0);
  return scale.getPixelForValue(i) + (at - i) * step;
}"""


def test_an_annotation_is_marked_on_the_trends_chart(page: Page, live_app: LiveApp) -> None:
    zone = ZoneInfo(live_app.app.extensions["umetrics"].settings.timezone)
    day = (datetime.now(zone) - timedelta(days=6)).date()
    when = datetime(day.year, day.month, day.day, 12, tzinfo=zone)
    login(page, live_app)
    page.goto(f"{live_app.url}{ADMIN}/annotations?scope_id=acme")
    page.fill("[data-testid=annotation-when]", when.strftime("%Y-%m-%dT%H:%M"))
    page.fill("[data-testid=annotation-text]", "v2.3 released: new onboarding")
    page.click("[data-testid=add-annotation]")
    page.wait_for_load_state()
    expect(page.locator("[data-testid=annotations] tbody tr")).to_have_count(1)
    earlier = (when - timedelta(days=9)).astimezone(ZoneInfo("UTC"))
    live_app.api(
        f"{API}/annotations?scope_id=acme",
        method="POST",
        body={"occurs_at": earlier.isoformat(), "text": "pricing page changed"},
    )
    page.goto(live_app.url + TRENDS)
    expect(page.locator("[data-testid=chart-trends] canvas[data-drawn]")).to_have_count(1)
    marks = page.locator("[data-testid=annotations-trends] li")
    expect(marks).to_have_count(2)
    expect(marks.nth(1)).to_contain_text(when.strftime("%Y-%m-%d 12:00"))
    spec = page.evaluate(
        "JSON.parse(document.querySelector('[data-testid=chart-trends] .um-chart-spec')"
        ".textContent)"
    )
    [first, second] = spec["annotations"]
    assert second["at"] % 1 == 0.5  # noon: half-way through its day
    assert second["at"] - first["at"] == 9
    for mark in (first, second):
        x = page.evaluate(MARK_X, [mark["at"]])
        assert page.evaluate(PURPLE_PIXELS, [x]) > 20, mark
        # a line, not a band (its label is on the right)
        assert page.evaluate(PURPLE_PIXELS, [x - 30]) == 0, mark
    # Hovering the line shows the whole note with its time in the app's zone.
    canvas = page.locator("[data-testid=chart-trends] canvas")
    box = canvas.bounding_box()
    assert box is not None
    x = page.evaluate(MARK_X, [second["at"]])
    page.mouse.move(box["x"] + x, box["y"] + box["height"] / 2)
    page.wait_for_timeout(200)
    screenshot(page, "annotations")
    # Deleting it on the Annotations page removes its mark.
    page.goto(f"{live_app.url}{ADMIN}/annotations?scope_id=acme")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("[data-testid=annotations] tbody tr").first.locator("button").click()
    page.wait_for_load_state()
    expect(page.locator("[data-testid=annotations] tbody tr")).to_have_count(1)
    page.goto(live_app.url + TRENDS)
    expect(page.locator("[data-testid=annotations-trends] li")).to_have_count(1)
    expect(page.locator("[data-testid=annotations-trends] li")).to_contain_text("pricing page")
