"""The Funnels page's other views in Chromium: conversion over time and time to convert, with
the numbers of the REST API's answer."""

from __future__ import annotations

from urllib.parse import urlencode

from playwright.sync_api import Page

from .conftest import LiveApp, login, number, screenshot, table_rows

ADMIN = "/umetrics/admin"
API = "/umetrics/api"
STEPS = ["$pageview", "signed_up", "note_created"]


def _query(params: list[tuple[str, str]]) -> str:
    return urlencode([("scope_id", "acme"), *(("step", s) for s in STEPS), *params])


def test_funnel_trends_and_time_to_convert(page: Page, live_app: LiveApp) -> None:
    login(page, live_app)
    trends = _query([("mode", "trends"), ("interval", "week")])
    page.goto(f"{live_app.url}{ADMIN}/funnels?{trends}")
    answer = live_app.api(f"{API}/query/funnel?{trends}")
    assert answer["mode"] == "trends" and answer["points"]
    rows = table_rows(page, "funnel-trends")
    assert [(number(r[1]), number(r[2])) for r in rows] == [
        (p["entered"], p["converted"]) for p in answer["points"]
    ]
    assert page.input_value("[data-testid='funnel-mode']") == "trends"
    screenshot(page, "funnel-trends")

    timed = _query([("mode", "time_to_convert"), ("from_step", "0"), ("to_step", "1")])
    page.goto(f"{live_app.url}{ADMIN}/funnels?{timed}")
    answer = live_app.api(f"{API}/query/funnel?{timed}")
    assert answer["converted"] > 0
    assert (
        number(page.text_content("[data-testid='funnel-converted']") or "") == answer["converted"]
    )
    rows = table_rows(page, "funnel-time")
    assert [number(r[1]) for r in rows] == [b["count"] for b in answer["histogram"]]
    screenshot(page, "funnel-time-to-convert")
