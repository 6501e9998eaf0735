"""Every page of the dashboard's menu, in Chromium on a laptop and on a phone: it answers 200,
draws its charts without a script error, and nothing wider than the screen pushes the page
sideways (wide tables scroll in their own box)."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

from .conftest import LiveApp, login

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}


def menu(page: Page, live: LiveApp) -> list[str]:
    page.goto(live.url + "/umetrics/admin/")
    return page.eval_on_selector_all(".um-nav a", "links => links.map(a => a.href)")


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_menu_page_renders(browser: Browser, live_app: LiveApp, viewport: dict) -> None:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"{page.url}: {message.text}")

    try:
        login(page, live_app)
        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
        links = menu(page, live_app)
        assert len(links) == 17  # with Features, Dashboards, Insights, Annotations, Lifecycle,
        # Stickiness, Web
        for link in links:
            response = page.goto(link)
            assert response is not None and response.status == 200, link
            page.wait_for_load_state("load")
            charts = page.locator("canvas").count()
            drawn = page.locator("canvas[data-drawn]").count()
            assert drawn == charts, link
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, (link, overflow)
        assert problems == []
    finally:
        context.close()


#: Pages beyond the menu, each with data, whose markup and scripts the policy must allow.
DEEP_PAGES = [
    "/umetrics/admin/person?distinct_id=4",
    "/umetrics/admin/experiments/pricing-page",
    "/umetrics/admin/experiments/pricing-page/edit",
    "/umetrics/admin/experiments/new",
    "/umetrics/admin/features/pricing-page",
    "/umetrics/admin/features/new",
    "/umetrics/admin/funnels?step=%24pageview&step=signed_up&step=note_created",
    "/umetrics/admin/retention?period=week",
    "/umetrics/admin/lifecycle?interval=week",
    "/umetrics/admin/stickiness?event=%24pageview",
    "/umetrics/admin/events?event=%24pageview&breakdown=%24pathname",
    "/umetrics/admin/ga4/accounts",
]


def test_the_content_security_policy_is_enforced_and_never_violated(
    browser: Browser, live_app: LiveApp
) -> None:
    """Chromium applies the dashboard's policy (a style attribute set by script is refused and
    reported) and no page, with its charts and forms, trips it."""
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    violations: list[str] = []
    try:
        login(page, live_app)  # (the browser's favicon request is a 404 on the example app)
        page.on(
            "console",
            lambda message: (
                violations.append(f"{page.url}: {message.text}")
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: violations.append(f"{page.url}: {error}"))
        for path in DEEP_PAGES:
            response = page.goto(live_app.url + path)
            assert response is not None and response.status in (200, 400), path
            assert "script-src 'self'" in response.headers["content-security-policy"], path
            page.wait_for_load_state("load")
            assert page.locator("canvas").count() == page.locator("canvas[data-drawn]").count()
        assert violations == []
        # The policy is live: an inline style is refused, and refused loudly.
        page.goto(live_app.url + "/umetrics/admin/")
        page.evaluate("document.body.setAttribute('style', 'background: red')")
        page.wait_for_timeout(200)
        assert any("Content Security Policy" in text for text in violations), violations
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background != "rgb(255, 0, 0)"
    finally:
        context.close()


def test_every_menu_item_is_in_view_and_dark_heat_cells_are_readable(
    browser: Browser, live_app: LiveApp
) -> None:
    """On a laptop the whole menu shows (a menu scrolled sideways hid Settings past its edge);
    on a phone it still scrolls in its own row. A retention cell dark enough for white text
    (week 0 is always 100%) shows its numbers in white, not in link blue on blue."""
    for viewport, wraps in ((LAPTOP, True), (PHONE, False)):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        try:
            login(page, live_app)
            page.goto(live_app.url + "/umetrics/admin/")
            boxes = [link.bounding_box() for link in page.locator(".um-nav a").all()]
            assert len(boxes) == 17 and all(box is not None for box in boxes)
            outside = [box for box in boxes if box and box["x"] + box["width"] > viewport["width"]]
            assert (outside == []) is wraps, (viewport, outside)
            if not wraps:
                continue
            page.goto(live_app.url + "/umetrics/admin/retention?period=week")
            cell = page.locator("td.um-dark a.um-cell-link").first
            assert cell.evaluate("a => getComputedStyle(a).color") == "rgb(255, 255, 255)"
            assert cell.evaluate("a => getComputedStyle(a.parentElement).color") == (
                "rgb(255, 255, 255)"
            )
        finally:
            context.close()


def test_a_chart_of_small_counts_has_whole_ticks(browser: Browser, live_app: LiveApp) -> None:
    """The demo flag's exposures are a handful of subjects: its axis counts 0, 1, 2, not 0.1,
    0.2 ... (a chart of fractions, such as a retention curve, keeps its fractional ticks)."""
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    ticks = "c => window.Chart.getChart(c).scales[c.dataset.axis || 'y'].ticks.map(t => t.value)"
    try:
        login(page, live_app)
        page.goto(live_app.url + "/umetrics/admin/experiments/new-editor")
        page.wait_for_selector("#chart-exposures canvas[data-drawn]")
        counts = page.eval_on_selector("#chart-exposures canvas", ticks)
        spec = page.text_content("#chart-exposures .um-chart-spec") or ""
        assert max(json.loads(spec)["datasets"][0]["data"]) < 6  # small enough for 0.1 steps
        assert len(counts) >= 2 and all(float(value).is_integer() for value in counts), counts
        page.goto(live_app.url + "/umetrics/admin/retention?period=week")
        page.wait_for_selector("#chart-retention-curve canvas[data-drawn]")
        shares = page.eval_on_selector("#chart-retention-curve canvas", ticks)
        assert any(not float(value).is_integer() for value in shares), shares
    finally:
        context.close()


def test_the_delete_prompt_reads_as_one_line(browser: Browser, live_app: LiveApp) -> None:
    """ "Type the distinct id 4 to confirm" sits on one line above its box (the form's labels
    stack their children, which broke it into three)."""
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    try:
        login(page, live_app)
        page.goto(live_app.url + "/umetrics/admin/person?distinct_id=4")
        prompt = page.locator("[data-testid='person-delete-prompt']")
        assert prompt.text_content() == "Type the distinct id 4 to confirm"
        box = prompt.bounding_box()
        code = prompt.locator("code").bounding_box()
        assert box is not None and code is not None
        assert box["height"] < 2 * code["height"]  # one line
    finally:
        context.close()
