"""Every page of the dashboard's menu, in Chromium on a laptop and on a phone: it answers 200,
draws its charts without a script error, and nothing wider than the screen pushes the page
sideways (wide tables scroll in their own box)."""

from __future__ import annotations

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
        assert len(links) == 10
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
