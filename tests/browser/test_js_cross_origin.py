"""umetrics.js on a front end at another origin, in Chromium, against the example app with
``UMETRICS_ALLOWED_ORIGINS``: an allowed origin's JSON calls pass the CORS preflight (with
credentials: the consent cookie goes both ways) and its answers are readable; another origin's are
blocked by the browser, while its beacons, which carry the public write key in a ``text/plain``
body, are still stored.

The front ends are real servers on other loopback ports (Chromium refuses loopback requests from
pages it considers public, so a routed fake domain would not do): other origins of the same site,
like ``app.example.com`` and ``metrics.example.com``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Page
from sqlalchemy import select

from flask_umetrics.admin.snippet import STUB
from flask_umetrics.db.tables import events

from .conftest import LiveApp, restarted, serving, wait_for

#: The HTML the front-end servers answer on ``/``.
PAGE: dict[str, str] = {"html": ""}
#: ``(method, path, Origin)`` of every API request the server received.
RECEIVED: list[tuple[str, str, str | None]] = []


def recording(wsgi_app: Any) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/umetrics/api/"):
            RECEIVED.append((environ["REQUEST_METHOD"], path, environ.get("HTTP_ORIGIN")))
        return wsgi_app(environ, start_response)

    return app


def front_end_server() -> Flask:
    front = Flask("front_end")
    front.add_url_rule("/", "index", lambda: PAGE["html"])
    front.add_url_rule("/away", "away", lambda: "bye")
    return front


@pytest.fixture(scope="module")
def fronts() -> Iterator[tuple[str, str]]:
    """Two front ends' origins: the first is allowed, the second is not."""
    with serving(front_end_server()) as allowed, serving(front_end_server()) as other:
        yield allowed.url, other.url


@pytest.fixture(scope="module")
def cors_app(live_app: LiveApp, fronts: tuple[str, str]) -> Iterator[LiveApp]:
    """The seeded example app, restarted with one other origin allowed."""
    app = restarted(live_app, UMETRICS_ALLOWED_ORIGINS=fronts[0])
    app.wsgi_app = recording(app.wsgi_app)  # type: ignore[method-assign]
    with serving(app) as live:
        yield live


def front_end(ctx: BrowserContext, live: LiveApp, origin: str) -> Page:
    """A page opened at ``origin`` that loads the client from the app, as a front end on another
    domain does: its own stub and options, ``api`` pointing at the app. ``RECEIVED`` then starts
    empty."""
    config = {
        "api": live.url + "/umetrics",
        "writeKey": live.app.config["UMETRICS_BROWSER_WRITE_KEY"],
        "scopeId": "acme",
        "consent": True,
        "autoPageviews": False,
        "flushInterval": 60_000,
    }
    PAGE["html"] = (
        f"<!doctype html><html><head><script>{STUB % json.dumps(config)}</script>"
        f"<script async src='{live.url}/umetrics/static/umetrics.js'></script></head>"
        "<body><a id='away' href='/away'>away</a></body></html>"
    )
    page = ctx.new_page()
    page.goto(origin + "/")
    page.wait_for_function("window.umetrics && window.umetrics.loaded === true")
    RECEIVED.clear()
    return page


def stored(live: LiveApp, name: str) -> list[str]:
    with live.app.app_context(), live.app.extensions["umetrics"].engine.connect() as connection:
        rows = connection.execute(select(events.c.distinct_id).where(events.c.event == name))
        return list(rows.scalars())


TRACK_AND_FLUSH = "name => { umetrics.track(name, {}); return umetrics.flush(); }"


FLAGS_WITH_COOKIE = """api => fetch(api + "/api/flags?scope_id=acme", {credentials: "include"})
    .then(answer => answer.json())"""


def test_an_allowed_front_end_sends_events_reads_flags_and_sets_consent(
    ctx: BrowserContext, cors_app: LiveApp, fronts: tuple[str, str]
) -> None:
    front = fronts[0]
    page = front_end(ctx, cors_app, front)
    consent = page.evaluate("umetrics.setConsent(true)")
    # The server's own answer was readable (the client's fallback has only ``consent``).
    assert consent["consent"] is True and isinstance(consent["anonymous_id"], str)
    # The consent cookie was stored for the app's origin and comes back with credentials.
    assert page.evaluate(FLAGS_WITH_COOKIE, cors_app.url + "/umetrics")["consent"] is True
    variant = page.evaluate("umetrics.getVariant('pricing-page')")
    assert isinstance(variant, str) and variant
    page.evaluate(TRACK_AND_FLUSH, "cors_allowed")
    assert wait_for(page, lambda: stored(cors_app, "cors_allowed"))
    # JSON with credentials: each POST was preflighted, and the preflight said yes.
    for request in [
        ("OPTIONS", "/umetrics/api/consent", front),
        ("POST", "/umetrics/api/consent", front),
        ("GET", "/umetrics/api/flags", front),
        ("OPTIONS", "/umetrics/api/events", front),
        ("POST", "/umetrics/api/events", front),
    ]:
        assert request in RECEIVED, request


def test_another_origin_is_blocked_but_its_keyed_beacon_is_stored(
    ctx: BrowserContext, cors_app: LiveApp, fronts: tuple[str, str]
) -> None:
    other = fronts[1]
    page = front_end(ctx, cors_app, other)
    assert page.evaluate("umetrics.getVariant('pricing-page')") is None  # answer unreadable
    page.evaluate(TRACK_AND_FLUSH, "cors_refused")
    page.wait_for_timeout(500)
    # The preflight got no CORS headers, so Chromium never sent the POST.
    assert ("OPTIONS", "/umetrics/api/events", other) in RECEIVED
    assert ("POST", "/umetrics/api/events", other) not in RECEIVED
    assert stored(cors_app, "cors_refused") == []
    # Leaving the page hands the queue to sendBeacon: text/plain, the key in the body, no
    # preflight, no cookie authority. The public write key writes events from anywhere.
    page.click("#away")
    assert wait_for(page, lambda: stored(cors_app, "cors_refused"))
    assert ("POST", "/umetrics/api/events", other) in RECEIVED
