"""Every dashboard page reads like a page for people, not an API dump (issue 14): on each menu
page and the pages behind them, in Chromium with the demo data, no header is a snake_case field
name, no time is a raw ISO timestamp (with microseconds), and no count is printed as a float.

Names the host chose are data, not labels: an event name (``signed_up``) or a property key
(``email_domain``) may appear in a header as sent, so the test allows exactly the event names
and property keys stored for the scope.
"""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page
from sqlalchemy import select

from .conftest import LiveApp, login

ADMIN = "/umetrics/admin"
#: Pages beyond the menu, each with data (results, a person, reports with their parameters).
DEEP_PAGES = [
    "/person?distinct_id=4",
    "/experiments/pricing-page",
    "/funnels?step=%24pageview&step=signed_up&step=note_created&step=plan_upgraded",
    "/retention?period=day",
    "/retention?period=month",
    "/lifecycle?interval=week&event=%24pageview",
    "/stickiness?interval=week",
    "/events?event=%24pageview&breakdown=%24pathname",
    "/events?event=plan_upgraded&breakdown=plan&math=unique_persons",
    "/paths?start_event=%24pageview",
    "/attribution?conversion_event=plan_upgraded",
    "/events?event=%24pageview&interval=hour",
    "/people?property=plan&value=pro",
    "/experiments/pricing-page/edit",
    "/features/new-editor",
    "/experiments/new",
    "/ga4/accounts",
]
#: What a person reads as a heading: table headers, term names, titles, legends.
HEADINGS = "th, dt, h1, h2, h3, legend, summary, caption, figcaption .um-chart-title"
#: The element's own text without code samples, select options and CSV links.
OWN_TEXT = """els => els.map(e => {
  const copy = e.cloneNode(true);
  copy.querySelectorAll('code, pre, select, option, .um-csv').forEach(x => x.remove());
  return copy.textContent.trim();
})"""
SNAKE = re.compile(r"(?<![\w$:.-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w-])")
ISO_T = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
MICROSECONDS = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d+")
#: ``7.0``, ``1,234.00`` (not ``$570.00``, ``0.05`` or ``12.5``).
FLOAT_COUNT = re.compile(r"(?<![\d.,$€£\w])\d[\d,]*\.0+(?![\d.%])")
#: Page text a person does not read as a value: code samples and form controls.
VISIBLE_TEXT = """main => {
  const skip = 'code, pre, select, textarea, script';
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  const parts = [];
  while (walker.nextNode()) {
    if (!walker.currentNode.parentElement.closest(skip)) parts.push(walker.currentNode.data);
  }
  return parts.join(' ');
}"""


def _data_names(live: LiveApp) -> set[str]:
    """The scope's event names and property keys (event and person properties)."""
    from flask_umetrics.db.tables import events, persons
    from flask_umetrics.state import current_state

    names: set[str] = set()
    with live.app.app_context(), current_state().engine.connect() as connection:
        for name, properties in connection.execute(select(events.c.event, events.c.properties)):
            names.add(name)
            names.update((properties or {}).keys())
        for (properties,) in connection.execute(select(persons.c.properties)):
            names.update((properties or {}).keys())
    return names


def _problems(page: Page, allowed: set[str]) -> list[str]:
    found = []
    for heading in page.eval_on_selector_all(HEADINGS, OWN_TEXT):
        for word in SNAKE.findall(heading):
            if word not in allowed:
                found.append(f"snake_case header {word!r} in {heading!r}")
    text = page.eval_on_selector("main", VISIBLE_TEXT)
    found += [f"ISO timestamp {m!r}" for m in ISO_T.findall(text)]
    found += [f"microseconds {m!r}" for m in MICROSECONDS.findall(text)]
    found += [f"float-formatted number {m!r}" for m in FLOAT_COUNT.findall(text)]
    return found


def test_every_page_reads_like_a_page_for_people(browser: Browser, live_app: LiveApp) -> None:
    allowed = _data_names(live_app)
    assert {"signed_up", "note_created", "email_domain"} <= allowed  # the demo's own names
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        login(page, live_app)
        page.goto(live_app.url + ADMIN + "/")
        links = page.eval_on_selector_all(".um-nav a", "links => links.map(a => a.href)")
        assert len(links) == 17  # with Features, Dashboards, Insights, Annotations, Lifecycle,
        # Stickiness, Web
        problems: dict[str, list[str]] = {}
        for link in links + [live_app.url + ADMIN + path for path in DEEP_PAGES]:
            response = page.goto(link)
            assert response is not None and response.status == 200, link
            found = _problems(page, allowed)
            if found:
                problems[link] = found
        assert problems == {}
    finally:
        context.close()


def test_the_checks_catch_what_they_look_for(browser: Browser, live_app: LiveApp) -> None:
    """The patterns find a raw field name, a REST timestamp and a float count (so the test above
    cannot pass by matching nothing), and leave labels, local times and money alone."""
    context = browser.new_context()
    page = context.new_page()
    try:
        page.set_content(
            "<main><table><tr><th>conversion_from_start</th><th>Conversion from start</th>"
            "<th>signed_up</th></tr><tr><td>2026-11-19T06:15:25.802143+00:00</td>"
            "<td>2026-11-19 07:15</td><td>7.0</td><td>1,234.00</td><td>$570.00</td>"
            "<td>12.5%</td><td>0.05</td></tr></table></main>"
        )
        assert _problems(page, {"signed_up"}) == [
            "snake_case header 'conversion_from_start' in 'conversion_from_start'",
            "ISO timestamp '2026-11-19T06:15'",
            "microseconds '2026-11-19T06:15:25.802143'",
            "float-formatted number '7.0'",
            "float-formatted number '1,234.00'",
        ]
    finally:
        context.close()
