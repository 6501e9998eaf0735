"""Events, Funnels and Retention pages in Chromium: every number is the REST API's answer."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from playwright.sync_api import Page, expect

from flask_umetrics import flush, track

from .conftest import LiveApp, login, number, screenshot, table_rows

ADMIN = "/umetrics/admin"
API = "/umetrics/api"
DEMO_STEPS = ["$pageview", "signed_up", "note_created", "plan_upgraded"]


def _query(params: list[tuple[str, str]]) -> str:
    return urlencode([("scope_id", "acme"), *params])


def _cell(text: str) -> float | None:
    return None if text == "\u2014" else number(text)


def _seconds(text: str) -> float | None:
    """``1 h 2 min`` / ``3 min 5 s`` / ``42 s`` back to seconds (as the page rounds them)."""
    if text == "\u2014":
        return None
    parts = text.split()
    units = {"d": 86400, "h": 3600, "min": 60, "s": 1}
    return sum(
        int(n.replace(",", "")) * units[u] for n, u in zip(parts[::2], parts[1::2], strict=True)
    )


def _shown_duration(seconds: float | None) -> float | None:
    """What the page shows for ``seconds``: to the hour past a day, to the minute past an hour."""
    if seconds is None:
        return None
    whole = round(seconds)
    if whole >= 86400:
        return whole - whole % 3600
    return whole - whole % 60 if whole >= 3600 else whole


def test_events_trends_and_top_values_match_the_api(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    params = [("event", "plan_upgraded"), ("breakdown", "plan"), ("interval", "day")]
    page.goto(f"{live_app.url}{ADMIN}/events?{_query(params)}")
    trends: dict[str, Any] = live_app.api(f"{API}/query/trends?{_query(params)}")
    names = [result["breakdown_value"] for result in trends["results"]]
    assert set(names) == {"pro", "team"}  # the demo's paid plans
    rows = table_rows(page, "trends")
    headers = page.eval_on_selector_all(
        "[data-testid='table-trends'] thead th", "cells => cells.map(c => c.textContent)"
    )
    assert headers == ["Time", *names]
    assert [row[0] for row in rows] == [p["time"][:10] for p in trends["results"][0]["series"]]
    for column, result in enumerate(trends["results"], start=1):
        assert [number(row[column]) for row in rows] == [p["value"] for p in result["series"]]
    totals = {row[0]: number(row[1]) for row in table_rows(page, "trend-totals")}
    assert totals == {r["breakdown_value"]: r["total"] for r in trends["results"]}

    top = live_app.api(
        f"{API}/query/top?{_query([('event', 'plan_upgraded'), ('property', 'plan')])}"
    )
    shown = [[row[0], number(row[1])] for row in table_rows(page, "top-values")]
    assert shown == [[item["key"], item["count"]] for item in top["items"]]
    assert sum(item["count"] for item in top["items"]) == sum(totals.values())

    events = live_app.api(f"{API}/query/top?{_query([])}")
    shown = [[row[0], number(row[1])] for row in table_rows(page, "top-events")]
    assert shown == [[item["key"], item["count"]] for item in events["items"]]
    expect(page.locator("canvas[data-drawn]")).to_have_count(3)

    # Math with a property and a filter row, through the form as a person would.
    page.select_option("select[name=math]", "sum")
    page.fill("input[name=property]", "value")
    page.fill("input[name=breakdown]", "")
    page.fill("input[name=filter_key]", "plan")
    page.select_option("select[name=filter_op]", "eq")
    page.fill("input[name=filter_value]", "team")
    page.click("form.um-range button[type=submit]")
    page.wait_for_load_state()
    summed = live_app.api(
        f"{API}/query/trends?"
        + _query(
            [
                ("event", "plan_upgraded"),
                ("math", "sum"),
                ("property", "value"),
                ("filters", '[{"key": "plan", "op": "eq", "value": "team"}]'),
            ]
        )
    )
    total = summed["results"][0]["total"]
    assert total == 99 * totals["team"]  # Team costs $99 a month
    assert [number(row[1]) for row in table_rows(page, "trend-totals")] == [total]


def test_funnel_matches_the_api(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(f"{live_app.url}{ADMIN}/funnels?scope_id=acme")
    assert table_rows(page, "funnel") == []
    page.click("[data-testid='funnel-suggestion']")
    page.wait_for_load_state()
    # The step builder: the suggestion filled four steps; change the window to 7 days.
    values = page.eval_on_selector_all(
        "[data-testid='step-input']", "inputs => inputs.map(i => i.value)"
    )
    assert values == [*DEMO_STEPS, ""]
    page.fill("input[name=window_value]", "7")
    page.click("form.um-range button[type=submit]")
    page.wait_for_load_state()

    steps = [("step", step) for step in DEMO_STEPS]
    answer = live_app.api(f"{API}/query/funnel?{_query([*steps, ('window', '604800')])}")
    assert answer["window_seconds"] == 604800
    assert page.text_content("[data-testid='funnel-window']") == "7 days"
    rows = table_rows(page, "funnel")
    assert [row[0] for row in rows] == [f"{i}. {step}" for i, step in enumerate(DEMO_STEPS, 1)]
    counts = [step["count"] for step in answer["steps"]]
    assert counts[0] > counts[1] >= counts[2] >= counts[3] > 0
    for row, step, previous in zip(rows, answer["steps"], [counts[0], *counts], strict=False):
        assert number(row[1]) == step["count"]
        assert number(row[2]) == round(step["conversion_from_start"] * 100, 1)
        assert number(row[3]) == round(step["conversion_from_previous"] * 100, 1)
        assert number(row[4]) == previous - step["count"]
        assert number(row[5]) == round((previous - step["count"]) / previous * 100, 1)
        assert _seconds(row[6]) == _shown_duration(step["median_seconds_from_previous"])
    expect(page.locator("canvas[data-drawn]")).to_have_count(1)
    screenshot(page, "funnel")


def test_funnel_breakdown_and_bad_input(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    steps = [("step", step) for step in DEMO_STEPS[:2]]
    page.goto(f"{live_app.url}{ADMIN}/funnels?{_query([*steps, ('breakdown', '$pathname')])}")
    answer = live_app.api(f"{API}/query/funnel?{_query([*steps, ('breakdown', '$pathname')])}")
    shown = [
        [row[0], *(number(c) for c in row[1:])] for row in table_rows(page, "funnel-breakdown")
    ]
    assert [row[0] for row in shown] == [f"{i}. {s}" for i, s in enumerate(DEMO_STEPS[:2], 1)]
    by_value = {group["value"]: group["steps"] for group in answer["breakdowns"]}
    for index in range(2):
        assert shown[index][1:] == [steps_[index]["count"] for steps_ in by_value.values()]

    response = page.goto(f"{live_app.url}{ADMIN}/funnels?{_query([('step', 'signed_up')])}")
    assert response is not None and response.status == 400
    assert "step" in (page.text_content("[data-testid='form-error']") or "")


def test_retention_matches_the_api(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(f"{live_app.url}{ADMIN}/retention?scope_id=acme")
    page.click("[data-testid='period-switch'] >> text=day")
    page.wait_for_load_state()
    page.select_option("select[name=start_event]", "signed_up")
    page.fill("input[name=periods]", "7")
    page.click("form.um-range button[type=submit]")
    page.wait_for_load_state()
    params = [("period", "day"), ("start_event", "signed_up"), ("periods", "7")]
    answer = live_app.api(f"{API}/query/retention?{_query(params)}")
    cohorts = answer["cohorts"]
    # Each demo user signs up once: the day cohorts hold every sign-up of the range.
    top = live_app.api(f"{API}/query/top?{_query([])}")["items"]
    signups = next(item["count"] for item in top if item["key"] == "signed_up")
    assert sum(c["size"] for c in cohorts) == signups > 50
    rows = table_rows(page, "retention")
    assert [row[0] for row in rows] == [c["start"][:10] for c in cohorts]
    assert [[number(cell) for cell in row[1:]] for row in rows] == [
        [c["size"], *c["counts"]] for c in cohorts
    ]
    # The heat map: sizes, and count and share of every period that has begun.
    grid = page.eval_on_selector_all(
        "[data-testid='table-cohorts'] tbody tr",
        """rows => rows.map(r => ({
            size: r.querySelector("[data-testid='cohort-size']").textContent,
            cells: Array.from(r.querySelectorAll('td.um-cell')).map(c => ({
                count: c.dataset.count, future: c.classList.contains('um-future'),
                shown: Array.from(c.querySelectorAll('span')).map(s => s.textContent)}))}))""",
    )
    assert [number(row["size"]) for row in grid] == [c["size"] for c in cohorts]
    for row, cohort in zip(grid, cohorts, strict=True):
        assert [float(cell["count"]) for cell in row["cells"]] == cohort["counts"]
        for cell, count, fraction in zip(
            row["cells"], cohort["counts"], cohort["fractions"], strict=True
        ):
            if not cell["future"]:
                share = f"{fraction * 100:,.1f}".rstrip("0").rstrip(".")  # 100.0 -> 100
                assert cell["shown"] == [f"{count:,.0f}", f"{share}%"]
    assert grid[0]["cells"][0]["future"] is False and grid[-1]["cells"][-1]["future"] is True
    # The curve: persons retained over persons of the cohorts that reached the period.
    curve = table_rows(page, "retention-curve")
    first = _cell(curve[0][1])
    sizes = sum(c["size"] for c in cohorts)
    assert first == round(sum(c["counts"][0] for c in cohorts) / sizes * 100, 1)
    expect(page.locator("canvas[data-drawn]")).to_have_count(1)
    screenshot(page, "retention")


def _assert_nothing_injected(page: Page) -> None:
    """No element made from the payloads, and no script but the page's own."""
    assert page.query_selector("img[src=x]") is None
    injected = page.eval_on_selector_all(
        "script",
        "s => s.filter(x => x.type !== 'application/json' && x.text.includes('alert')).length",
    )
    assert injected == 0


def test_html_in_event_names_and_values_is_shown_as_text(page: Page, live_app: LiveApp) -> None:
    name = "<script>alert(1)</script>"
    value = "<img src=x onerror=alert(2)>"
    with live_app.app.app_context():
        for index in range(3):
            track(name, distinct_id=f"xss-{index}", properties={"p": value}, scope_id="acme")
        flush()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    login(page, live_app)
    page.goto(f"{live_app.url}{ADMIN}/events?{_query([('event', name), ('breakdown', 'p')])}")
    events = [row[0] for row in table_rows(page, "top-events")]
    assert name in events
    assert table_rows(page, "top-values") == [[value, "3"]]
    headers = page.eval_on_selector_all(
        "[data-testid='table-trends'] thead th", "cells => cells.map(c => c.textContent)"
    )
    assert headers == ["Time", value]
    assert page.eval_on_selector("select[name=event] option:checked", "o => o.textContent") == name
    expect(page.locator("canvas[data-drawn]")).to_have_count(3)
    _assert_nothing_injected(page)
    page.goto(f"{live_app.url}{ADMIN}/funnels?{_query([('step', name), ('step', name)])}")
    assert table_rows(page, "funnel")[0][:2] == [f"1. {name}", "3"]
    _assert_nothing_injected(page)
    page.goto(f"{live_app.url}{ADMIN}/retention?{_query([('start_event', name)])}")
    expect(page.locator("canvas[data-drawn]")).to_have_count(1)
    assert page.eval_on_selector("select[name=start_event] option:checked", "o => o.text") == name
    _assert_nothing_injected(page)
    assert dialogs == []


def test_retention_breakdown_rolling_and_sunday_weeks(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(f"{live_app.url}{ADMIN}/retention?scope_id=acme&period=day")
    page.select_option("select[name=start_event]", "signed_up")
    page.fill("input[name=periods]", "7")
    page.select_option("select[name=windows]", "rolling")
    page.select_option("select[name=week_start]", "sunday")
    page.fill("input[name=breakdown]", "plan")
    page.select_option("select[name=breakdown_type]", "person")
    page.click("form.um-range button[type=submit]")
    page.wait_for_load_state()
    params = [
        ("period", "day"),
        ("start_event", "signed_up"),
        ("periods", "7"),
        ("windows", "rolling"),
        ("week_start", "sunday"),
        ("breakdown", "plan"),
        ("breakdown_type", "person"),
    ]
    answer = live_app.api(f"{API}/query/retention?{_query(params)}")
    assert answer["windows"] == "rolling" and len(answer["breakdowns"]) >= 2
    for index, grid in enumerate(answer["breakdowns"]):
        rows = table_rows(page, f"retention-{index}")
        assert [[number(cell) for cell in row[1:]] for row in rows] == [
            [c["size"], *c["counts"]] for c in grid["cohorts"]
        ]
    curve = table_rows(page, "retention-curve")
    assert len(curve[0]) == 1 + 1 + len(answer["breakdowns"])  # period, retained, one per value
    first = answer["curve"][0]
    assert _cell(curve[0][1]) == round(first * 100, 1)
    expect(page.locator("canvas[data-drawn]")).to_have_count(1)
    screenshot(page, "retention-breakdown")


def test_events_breakdown_by_person_property(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    page.goto(f"{live_app.url}{ADMIN}/events?{_query([('event', 'signed_up')])}")
    page.fill("input[name=breakdown]", "plan")
    page.select_option("select[name=breakdown_type]", "person")
    page.click("form.um-range button[type=submit]")
    page.wait_for_load_state()
    expect(page.locator("select[name=breakdown_type]")).to_have_value("person")
    params = [("event", "signed_up"), ("breakdown", "plan"), ("breakdown_type", "person")]
    trends: dict[str, Any] = live_app.api(f"{API}/query/trends?{_query(params)}")
    totals = {row[0]: number(row[1]) for row in table_rows(page, "trend-totals")}
    shown = {r["breakdown_value"] or "(none)": r["total"] for r in trends["results"]}
    assert totals == shown and len(shown) > 1  # current plans, not "free" at sign-up
    screenshot(page, "events-person-breakdown")
