"""Product events of Acme Notes: page views, sign-ups, logins, notes, upgrades.

Anonymous visitors get a first-party visitor id cookie; signing up or logging in identifies
them, so flask-umetrics merges their anonymous history into the user (retroactively).
Visitors sending Do-Not-Track or Global Privacy Control, and crawlers, are not tracked.

**Browser client.** When ``UMETRICS_BROWSER_WRITE_KEY`` is set, ``base.html`` loads
``umetrics.js`` (``{{ umetrics_snippet() }}``): the browser then sends the page views (with
consent only, see the client's header) and the pricing / sign-up clicks, and the server stops
tracking ``$pageview`` itself so no page is counted twice. Sign-ups, logins, notes and upgrades
stay server-side. ``seed-demo`` creates the demo's ingest key and writes it to
``instance/write-key.txt``; ``create_app`` loads that file when neither the app config nor the
environment sets the key (production sets it from its secret store).
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask, Response, current_app, g, request

from flask_umetrics import identify, set_person_properties, track
from flask_umetrics.events.ingest import is_bot

from . import consent
from .analytics import SCOPE
from .auth import current_user
from .key_files import load_key_file, write_key_file

VISITOR_COOKIE = "acme_visitor"
WRITE_KEY_SETTING = "UMETRICS_BROWSER_WRITE_KEY"
WRITE_KEY_FILE = "write-key.txt"
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def _tracking_allowed() -> bool:
    if request.headers.get("DNT") == "1" or request.headers.get("Sec-GPC") == "1":
        return False
    return not is_bot(request.headers.get("User-Agent"))


def visitor_id() -> str:
    """This browser's anonymous id (a new one is set as a cookie after the request)."""
    existing = request.cookies.get(VISITOR_COOKIE)
    if existing and len(existing) <= 64:
        return existing
    if "acme_new_visitor" not in g:
        g.acme_new_visitor = f"v-{uuid.uuid4().hex}"
    return str(g.acme_new_visitor)


def distinct_id() -> str:
    user = current_user()
    return str(user.id) if user is not None else visitor_id()


def event(name: str, **properties: Any) -> None:
    """Track ``name`` for the current visitor or user (written once, at the end of the request)."""
    if _tracking_allowed():
        track(name, distinct_id=distinct_id(), properties=properties, scope_id=SCOPE)


def identified(user_id: int, **traits: Any) -> None:
    """The visitor just signed up or logged in as ``user_id``: merge their anonymous history.

    Call it before logging them in. Experiments know a consenting visitor by the consent
    cookie's anonymous id, not by ``acme_visitor``: that id joins the user's person too, so an
    exposure on the pricing page and the upgrade after signing up count as one subject.
    """
    if _tracking_allowed():
        identify(str(user_id), anon_id=visitor_id(), traits=traits, scope_id=SCOPE)
        experiment_id = consent.anonymous_id()
        if experiment_id is not None:
            identify(str(user_id), anon_id=experiment_id, scope_id=SCOPE)


def plan_changed(user_id: int, plan: str) -> None:
    """The workspace is on ``plan`` now: so is the user's person (its ``plan`` property, which
    the sign-up set to ``free``), so people searches and breakdowns by plan stay right."""
    if _tracking_allowed():
        set_person_properties(str(user_id), {"plan": plan}, scope_id=SCOPE)


def write_browser_key(instance_path: str, key: str) -> str:
    """Save the browser client's write key where ``create_app`` finds it; the path."""
    about = (
        "The browser client's ingest key, written by `flask --app example_app seed-demo`.\n"
        "create_app loads it when UMETRICS_BROWSER_WRITE_KEY is not set; it is public (pages\n"
        "carry it) and can only write events."
    )
    return write_key_file(instance_path, WRITE_KEY_FILE, WRITE_KEY_SETTING, key, about)


def load_browser_key(app: Flask) -> bool:
    """Put the saved write key into ``app.config`` unless the config or the environment has one;
    True when it did. Call before ``umetrics.init_app`` reads the settings."""
    return load_key_file(app, WRITE_KEY_FILE, WRITE_KEY_SETTING)


def browser_client_active() -> bool:
    return bool(current_app.config.get(WRITE_KEY_SETTING))


def _page_view() -> None:
    if request.method != "GET" or request.blueprint != "pages":
        return
    if browser_client_active():  # umetrics.js sends the page views
        return
    properties: dict[str, Any] = {"$pathname": request.path, "$current_url": request.url}
    if request.referrer:
        properties["$referrer"] = request.referrer
    properties.update({key: request.args[key] for key in UTM_KEYS if key in request.args})
    event("$pageview", **properties)


def _set_visitor_cookie(response: Response) -> Response:
    new = g.get("acme_new_visitor")
    if new and _tracking_allowed():
        response.set_cookie(
            VISITOR_COOKIE,
            new,
            max_age=365 * 86400,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
        )
    return response


def init_app(app: Flask) -> None:
    app.before_request(_page_view)
    app.after_request(_set_visitor_cookie)
