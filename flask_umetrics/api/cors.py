"""CORS for the browser endpoints, from ``UMETRICS_ALLOWED_ORIGINS`` (with flask-cors).

A front end on another origin that the host lists may send events and identify calls, read the
visitor's flags and set consent, with credentials (the consent cookie is the visitor's id for
experiments), and GrowthBook's browser SDKs there may read the GrowthBook SDK payload with a
client key (``GET`` only, without credentials: the key in the path is the authority). Nothing
else gets CORS headers: the dashboard's and the management API's answers stay unreadable to
other origins, and their JSON writes are never preflighted for them.

The origins are exact, never ``*`` (``config.normalize_origin``), so answering
``Access-Control-Allow-Credentials: true`` hands a visitor's cookie only to pages the host
trusts. Error answers of these endpoints carry the same headers, so the page can read them.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask_cors import CORS

#: The endpoints a browser on an allowed origin may call (the rest of the API is not CORS).
BROWSER_ENDPOINTS = frozenset(
    {
        "umetrics_api.events_ingest",
        "umetrics_api.identify_person",
        "umetrics_api.flags_for_subject",
        "umetrics_api.consent",
        "umetrics_togo.togo_events",
        "umetrics_togo.togo_identify",
        "umetrics_openmetrics.ping",
        "umetrics_openmetrics.create_user",
        "umetrics_openmetrics.log_events",
        "umetrics_openmetrics.set_user_id",
        "umetrics_openmetrics.set_user_props",
        "umetrics_openmetrics.set_session_props",
    }
)
#: The GrowthBook SDK payload, which GrowthBook's browser SDKs on an allowed origin fetch with
#: the client key in the path: no cookie is needed, so no credentials are allowed.
PAYLOAD_ENDPOINTS = frozenset(
    {"umetrics_api.growthbook_sdk_features", "umetrics_api.growthbook_features_payload"}
)
#: Request headers a browser page may send (``Authorization`` is for server-side keys).
ALLOWED_HEADERS = ("Content-Type", "X-UMetrics-Key")
#: Response headers the page may read: the client backs off by ``Retry-After`` on 429 / 503.
EXPOSED_HEADERS = ("Retry-After",)
PREFLIGHT_MAX_AGE_SECONDS = 600


def browser_paths(app: Flask, endpoints: frozenset[str] = BROWSER_ENDPOINTS) -> list[str]:
    """The URL rule of each registered endpoint of ``endpoints``, in the app's ``url_map``."""
    return sorted({rule.rule for rule in app.url_map.iter_rules() if rule.endpoint in endpoints})


def rule_pattern(rule: str) -> re.Pattern[str]:
    """A URL rule as an anchored regex; a path argument (``<client_key>``) is one segment."""
    return re.compile("[^/]+".join(re.escape(part) for part in re.split(r"<[^>]*>", rule)) + "$")


def install_cors(app: Flask, origins: list[str]) -> None:
    """Answer CORS requests and preflights from ``origins`` on the browser endpoints and the
    GrowthBook SDK payload; with no origins nothing is installed (same-origin pages need no
    CORS)."""
    if not origins:
        return
    # Each rule exactly, as an anchored regex.
    resources: dict[str | re.Pattern[str], dict[str, Any]] = {
        rule_pattern(path): {} for path in browser_paths(app)
    }
    for path in browser_paths(app, PAYLOAD_ENDPOINTS):
        resources[rule_pattern(path)] = {
            "methods": ["GET", "OPTIONS"],
            "allow_headers": [],
            "supports_credentials": False,
        }
    CORS(
        app,
        resources=resources,
        origins=origins,
        methods=["GET", "POST", "OPTIONS"],
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        supports_credentials=True,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
        send_wildcard=False,
        always_send=False,
        vary_header=True,
        # Our blueprints answer their own errors (after_request then runs); do not wrap the
        # host app's exception handlers.
        intercept_exceptions=False,
        automatic_options=True,
        allow_private_network=False,
    )
