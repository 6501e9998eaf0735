"""umetrics.js in Chromium on the example app: a funnel click-through arrives as one person and
one session; Do-Not-Track and undecided consent send and store nothing; queued calls, retries
and the page-hide beacon deliver every event exactly once.

The seeded app of ``live_app`` is started again on the same instance folder (as after
``seed-demo`` in the demo), so it loads the browser write key that seeding wrote. Chromium runs
with an ordinary user agent (a command-line switch, so beacons sent while a page unloads carry it
too): the server drops events from "HeadlessChrome" as a bot's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.sessions import SecureCookieSessionInterface
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route
from sqlalchemy import func, select

from flask_umetrics.admin.snippet import umetrics_snippet
from flask_umetrics.db.tables import events, exposures, person_distinct_ids
from flask_umetrics.events.validation import to_micros
from flask_umetrics.state import current_state

from .conftest import LiveApp, restarted, serving, wait_for

TEST_PAGE = "/js-test/"
#: ``(content type, DNT header)`` of every ``POST /umetrics/api/events`` the server received.
INGESTED: list[tuple[str, str | None]] = []


def recording(wsgi_app: Any) -> Any:
    """WSGI middleware noting each ingestion request (beacons sent while a page unloads do
    not show up among Playwright's requests)."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/umetrics/api/events":
            INGESTED.append((environ.get("CONTENT_TYPE", ""), environ.get("HTTP_DNT")))
        return wsgi_app(environ, start_response)

    return app


@pytest.fixture(scope="module")
def client_app(live_app: LiveApp) -> Iterator[LiveApp]:
    """The seeded example app restarted with its write key, as ``flask run`` after seeding."""
    app = restarted(live_app)
    assert app.config["UMETRICS_BROWSER_WRITE_KEY"]
    app.wsgi_app = recording(app.wsgi_app)  # type: ignore[method-assign]
    with serving(app) as live:
        yield live


def now_micros() -> int:
    from datetime import datetime, timezone

    return to_micros(datetime.now(timezone.utc))


def client_events(live: LiveApp, since: int) -> list[dict[str, Any]]:
    """Events the browser sent (they carry a session id) since ``since``, in time order."""
    with live.app.app_context():
        engine = live.app.extensions["umetrics"].engine
        with engine.connect() as connection:
            rows = connection.execute(
                select(events)
                .where(events.c.scope_id == "acme", events.c.ts >= since)
                .where(events.c.session_id.is_not(None))
                .order_by(events.c.ts, events.c.id)
            ).all()
    return [dict(row._mapping) for row in rows]


def event_count(live: LiveApp) -> int:
    with live.app.app_context(), live.app.extensions["umetrics"].engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(events)).scalar_one())


def record_requests(page: Page) -> list[Request]:
    sent: list[Request] = []

    def on_request(request: Request) -> None:
        if "/umetrics/api/events" in request.url or "/umetrics/api/identify" in request.url:
            sent.append(request)

    page.on("request", on_request)
    return sent


def serve_test_page(page: Page, live: LiveApp, body: str, head: str = "", **options: Any) -> str:
    """Answer ``/js-test/`` on the app's origin with ``body`` after the snippet (``options``)."""
    with live.app.test_request_context("/", base_url=live.url):
        snippet = umetrics_snippet(**options)
    html = (
        f"<!doctype html><html><head><title>JS test</title>{head}{snippet}</head>"
        f"<body><a id='away' href='/pricing'>away</a>{body}</body></html>"
    )

    def fulfill(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

    page.route(live.url + TEST_PAGE + "**", fulfill)
    return live.url + TEST_PAGE


def test_a_funnel_click_through_is_one_person_and_one_session(
    ctx: BrowserContext, client_app: LiveApp
) -> None:
    page = ctx.new_page()
    since = now_micros()
    start = client_app.url + "/?utm_source=newsletter&utm_medium=email"
    page.goto(start)
    page.click("#consent-banner [data-consent=true]")
    page.wait_for_selector("#consent-banner", state="detached")
    page.click("a[data-umetrics-cta=pricing]")
    page.wait_for_url("**/pricing")
    page.click("a[data-umetrics-event=pricing_cta_clicked][data-umetrics-plan=pro]")
    page.wait_for_url("**/signup")
    page.fill("#name", "Jo Script")
    page.fill("#email", "jo.script@example.org")
    page.fill("#password", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/app")

    expected = [
        ("$pageview", "/"),
        ("cta_clicked", None),
        ("$pageview", "/pricing"),
        ("pricing_cta_clicked", None),
        ("$pageview", "/signup"),
        ("signup_submitted", None),
        ("$pageview", "/app"),
    ]
    got = wait_for(page, lambda: len(client_events(client_app, since)) >= len(expected) or None)
    assert got, client_events(client_app, since)
    sent = client_events(client_app, since)
    assert [(e["event"], e["properties"].get("$pathname")) for e in sent] == expected
    assert len({e["session_id"] for e in sent}) == 1
    anon = sent[0]["distinct_id"]
    assert {e["distinct_id"] for e in sent[:6]} == {anon}
    # The browser took the consent cookie's anonymous id, the one the pricing experiment
    # exposed: events and exposures are one person before the sign-up.
    with client_app.app.app_context():
        engine = current_state().engine
        with engine.connect() as connection:
            exposed = (
                connection.execute(
                    select(exposures.c.subject_id).where(
                        exposures.c.experiment_key == "pricing-page", exposures.c.ts >= since
                    )
                )
                .scalars()
                .all()
            )
    assert anon in exposed  # (the signed-up user is exposed again on the app page)

    url = client_app.url
    views = [e["properties"] for e in sent if e["event"] == "$pageview"]
    assert [v["$current_url"] for v in views] == [
        start,
        url + "/pricing",
        url + "/signup",
        url + "/app",
    ]
    assert [v.get("$referrer") for v in views] == [None, start, url + "/pricing", url + "/signup"]
    assert views[0]["utm_source"] == "newsletter" and views[0]["utm_medium"] == "email"
    assert "utm_source" not in views[1]
    assert [v["$title"] for v in views][:2] == ["Acme Notes", "Pricing · Acme Notes"]
    # The visitor accepted the consent banner: the server stamps the recorded choice on each event
    # (events/request_marks.py), which GA4 forwarding's opt-in reads.
    assert _sent_props(sent[1]) == {"cta": "pricing", "$consent": True}
    assert _sent_props(sent[3]) == {"plan": "pro", "$consent": True}

    # Sign-up: the page after it identifies the user, and the anonymous history merges into them.
    user_id = sent[6]["distinct_id"]
    assert user_id.isdigit()

    def merged() -> bool:
        with client_app.app.app_context():
            engine = client_app.app.extensions["umetrics"].engine
            with engine.connect() as connection:
                rows = connection.execute(
                    select(person_distinct_ids.c.distinct_id, person_distinct_ids.c.person_id)
                    .where(person_distinct_ids.c.scope_id == "acme")
                    .where(person_distinct_ids.c.distinct_id.in_([anon, user_id]))
                ).all()
        return len(rows) == 2 and len({person for _, person in rows}) == 1

    assert wait_for(page, merged)
    timeline = client_app.api(f"/umetrics/api/persons/{anon}/timeline?scope_id=acme&limit=50")
    names = [e["event"] for e in timeline["events"]]
    assert names.count("$pageview") == 4 and "signed_up" in names
    # After consent the ids live in localStorage (and nowhere else on the client).
    stored = page.evaluate("JSON.parse(localStorage.getItem('umetrics'))")
    assert stored["a"] == anon and stored["d"] == user_id and stored["s"] == sent[0]["session_id"]


def test_with_do_not_track_nothing_is_sent(chromium: Browser, client_app: LiveApp) -> None:
    context = chromium.new_context(extra_http_headers={"DNT": "1"})
    context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'});"
    )
    try:
        page = context.new_page()
        sent = record_requests(page)
        before = event_count(client_app)
        page.goto(client_app.url + "/")
        assert page.query_selector("#consent-banner") is None  # DNT: the app does not ask
        page.click("a[data-umetrics-cta=pricing]")
        page.wait_for_url("**/pricing")
        page.evaluate("umetrics.setConsent(true)")  # even a yes does not override DNT
        page.evaluate("umetrics.track('dnt_probe'); umetrics.flush()")
        page.click("a[data-umetrics-event=pricing_cta_clicked][data-umetrics-plan=pro]")
        page.wait_for_url("**/signup")
        page.wait_for_timeout(1500)
        assert sent == [] and not any(dnt for _, dnt in INGESTED)
        assert event_count(client_app) == before
        assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    finally:
        context.close()


def stored_cookies(ctx: BrowserContext, client_app: LiveApp) -> list[tuple[str, str]]:
    """The context's cookies, except a Flask session that holds nothing but the CSRF token of
    the sign-up form on the page (strictly necessary for that form, HttpOnly, no identifier
    that analytics uses); any other session content fails the test."""
    kept = []
    for cookie in ctx.cookies():
        if cookie["name"] == "session":
            serializer = SecureCookieSessionInterface().get_signing_serializer(client_app.app)
            assert serializer is not None
            assert set(serializer.loads(cookie["value"])) == {"csrf_token"}
            assert cookie["httpOnly"] is True
            continue
        kept.append((cookie["name"], cookie["value"]))
    return kept


def test_before_consent_nothing_is_stored_or_sent(ctx: BrowserContext, client_app: LiveApp) -> None:
    page = ctx.new_page()
    sent = record_requests(page)
    before = event_count(client_app)
    page.goto(client_app.url + "/")
    page.click("a[data-umetrics-cta=pricing]")
    page.wait_for_url("**/pricing")
    page.click("a[data-umetrics-event=pricing_cta_clicked][data-umetrics-plan=team]")
    page.wait_for_url("**/signup")
    page.wait_for_timeout(1500)
    assert sent == []
    assert stored_cookies(ctx, client_app) == []
    assert page.evaluate("[localStorage.length, sessionStorage.length]") == [0, 0]

    page.click("#consent-banner [data-consent=false]")
    page.wait_for_selector("#consent-banner", state="detached")
    page.goto(client_app.url + "/pricing")  # the refusal holds on later pages
    page.evaluate("umetrics.track('refused_probe')")
    page.goto(client_app.url + "/")
    page.wait_for_timeout(1200)
    assert sent == []
    assert event_count(client_app) == before
    # Only the app's own record of the answer ("no", no identifier) is left.
    assert stored_cookies(ctx, client_app) == [("acme_consent", "no")]
    assert page.evaluate("[localStorage.length, sessionStorage.length]") == [0, 0]


def test_calls_queued_before_the_script_loads_are_delivered(
    ctx: BrowserContext, client_app: LiveApp
) -> None:
    page = ctx.new_page()
    since = now_micros()
    head = (
        "<script>window.umetrics = function () {"
        " (window.umetrics.q = window.umetrics.q || []).push(arguments); };"
        " umetrics('track', 'queued_call', {n: 1});"
        " umetrics('identify', 'queue-user-1');</script>"
    )
    body = "<script>umetrics.push(['track', 'queued_push', {n: 2}]);</script>"
    url = serve_test_page(page, client_app, body, head, consent=True, flush_interval=200)
    page.goto(url)
    got = wait_for(page, lambda: len(client_events(client_app, since)) >= 3 or None)
    assert got
    sent = client_events(client_app, since)
    assert sorted(e["event"] for e in sent) == ["$pageview", "queued_call", "queued_push"]
    assert {e["distinct_id"] for e in sent} == {"queue-user-1"}  # identify was replayed first
    assert _sent_props(next(e for e in sent if e["event"] == "queued_call")) == {"n": 1}

    # A single-page app's navigation is a page view with the previous URL as referrer.
    page.evaluate("history.pushState({}, '', '/js-test/next?utm_campaign=spa')")
    page.evaluate("history.replaceState({}, '', '/js-test/next?utm_campaign=spa')")  # same URL
    got = wait_for(page, lambda: len(client_events(client_app, since)) >= 4 or None)
    views = [e for e in client_events(client_app, since) if e["event"] == "$pageview"]
    assert [v["properties"]["$pathname"] for v in views] == ["/js-test/", "/js-test/next"]
    assert views[1]["properties"]["$referrer"] == url
    assert views[1]["properties"]["utm_campaign"] == "spa"


def test_failed_batches_are_retried_and_stored_once(
    ctx: BrowserContext, client_app: LiveApp
) -> None:
    page = ctx.new_page()
    since = now_micros()
    answers: list[int] = []

    def flaky(route: Route) -> None:
        if len(answers) < 2:
            answers.append(503)
            route.fulfill(status=503, content_type="application/json", body="{}")
        else:
            answers.append(200)
            route.continue_()

    page.route("**/umetrics/api/events", flaky)
    body = "<script>umetrics('track', 'retry_a'); umetrics('track', 'retry_b');</script>"
    url = serve_test_page(
        page, client_app, body, consent=True, flush_interval=100, auto_pageviews=False
    )
    page.goto(url)
    assert wait_for(page, lambda: len(client_events(client_app, since)) >= 2 or None)
    page.wait_for_timeout(500)
    sent = client_events(client_app, since)
    assert [e["event"] for e in sent] == ["retry_a", "retry_b"]
    assert answers == [503, 503, 200]

    # The same batch sent again (a beacon racing a fetch) is acknowledged, not stored twice.
    again = page.evaluate(
        """async (events) => {
            const res = await fetch('/umetrics/api/events', {method: 'POST',
                body: JSON.stringify({events, api_key: umetrics.config.writeKey})});
            return res.json();
        }""",
        [
            {
                "event": e["event"],
                "distinct_id": e["distinct_id"],
                "uuid": e["uuid"],
                "session_id": e["session_id"],
            }
            for e in sent
        ],
    )
    assert again["accepted"] == 0 and again["duplicates"] == 2
    assert len(client_events(client_app, since)) == 2


def test_page_hide_sends_the_pending_batch_with_a_beacon(
    ctx: BrowserContext, client_app: LiveApp
) -> None:
    page = ctx.new_page()
    since = now_micros()
    sent = record_requests(page)
    body = "<script>umetrics('track', 'beacon_a'); umetrics('track', 'beacon_b');</script>"
    url = serve_test_page(
        page, client_app, body, consent=True, flush_interval=60_000, auto_pageviews=False
    )
    page.goto(url)
    page.wait_for_function("window.umetrics.loaded === true")
    page.wait_for_timeout(300)
    assert sent == []  # held for a minute
    INGESTED.clear()
    page.click("#away")
    page.wait_for_url("**/pricing")
    assert wait_for(page, lambda: len(client_events(client_app, since)) >= 2 or None)
    assert [e["event"] for e in client_events(client_app, since)] == ["beacon_a", "beacon_b"]
    # One request, a beacon's (text/plain: no CORS preflight, no custom headers), not a fetch.
    assert [content_type for content_type, _ in INGESTED] == ["text/plain;charset=utf-8"]
    assert sent == []


#: What ingestion adds from the request's user agent (events/user_agent.py), not what was sent.
PARSED_UA = ("$browser", "$os", "$device_type")


def _sent_props(event: dict[str, Any]) -> dict[str, Any]:
    """An event's properties as the client sent them (without the parsed user agent)."""
    return {k: v for k, v in event["properties"].items() if k not in PARSED_UA}
