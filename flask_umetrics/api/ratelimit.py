"""Rate limits on the endpoints anyone can reach, with Flask-Limiter.

Two kinds of public endpoint, each with its own budget per client IP: ingestion (``/api/events``,
``/api/identify``, togo's events and identify, open-metrics writes and ping:
``UMETRICS_RATELIMIT_INGEST``)
and the anonymous browser endpoints (``/api/flags``, ``/api/consent``:
``UMETRICS_RATELIMIT_PUBLIC``). Ingestion also has a budget per API key, across all client IPs
(``UMETRICS_RATELIMIT_PER_KEY``), so a leaked or public write key cannot be used to flood the
database from many addresses. Past a limit the answer is 429 ``rate_limited`` with
``Retry-After`` (see ``router.py``).

The limiter is this extension's own ``Limiter`` per app: a request filter exempts every request
outside these endpoints, so a host that runs its own Flask-Limiter keeps its limits and its
counters (ours are stored under the ``umetrics`` key prefix). The client IP is
``request.remote_addr``: behind a reverse proxy the host must apply werkzeug's ``ProxyFix`` so
that it is the visitor's address and not the proxy's (``X-Forwarded-For`` is not read here, as
anyone can send it).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any, cast

from flask import Blueprint, Flask, current_app, request
from flask_limiter import Limiter

from ..auth import OPENMETRICS, _bearer_token, url_key
from ..config import Settings
from ..errors import APIError
from ..state import current_state
from .router import _json_body

INGEST, PUBLIC = "ingest", "public"
#: The anonymous browser endpoints (permission ``None``) that are rate-limited; ``/api/health``,
#: ``/api/openapi.json`` and open-metrics' ping answer from memory and are not.
PUBLIC_ENDPOINTS = frozenset({"umetrics_api.flags_for_subject", "umetrics_api.consent"})
#: Public by permission but writing events (open-metrics' ping stores one with a ``sessionId``).
INGEST_ENDPOINTS = frozenset({"umetrics_openmetrics.ping"})
BLUEPRINTS = ("umetrics_api", "umetrics_togo", "umetrics_openmetrics")


def budget() -> str | None:
    """Which budget the current request spends: ``"ingest"``, ``"public"`` or None (exempt)."""
    endpoint = request.endpoint or ""
    if request.blueprint not in BLUEPRINTS:
        return None
    if endpoint in PUBLIC_ENDPOINTS:
        return PUBLIC
    view = current_app.view_functions.get(endpoint)
    permission = getattr(view, "umetrics_permission", None)
    writes = endpoint in INGEST_ENDPOINTS or permission in (INGEST, OPENMETRICS)
    return INGEST if writes else None


def client_ip() -> str:
    """``request.remote_addr`` (correct behind a proxy only with ProxyFix; see above)."""
    return request.remote_addr or "unknown"


def _presented_key() -> str | None:
    """The API key the request carries, wherever ingestion accepts it, without checking it."""
    key: Any = _bearer_token() or request.headers.get("X-UMetrics-Key")
    if key is None:
        try:
            if request.blueprint == "umetrics_openmetrics":
                from .compat.openmetrics import _payload

                body: Any = _payload()
            else:
                body = _json_body(optional=True)
        except APIError:  # the route answers the bad body itself
            return None
        key = body.get("api_key") if isinstance(body, dict) else None
    if not key and request.blueprint == "umetrics_openmetrics":
        # Its public key: ?key=, else the host's UMETRICS_OPENMETRICS_KEY (one budget for it).
        key = url_key() or current_state().settings["UMETRICS_OPENMETRICS_KEY"]
    return key if isinstance(key, str) and key else None


def key_identity() -> str:
    """A digest of the presented key: raw keys never reach the limiter's storage."""
    key = _presented_key()
    return "" if key is None else hashlib.sha256(key.encode()).hexdigest()[:32]


def _not_ingest() -> bool:
    return budget() != INGEST


def _not_keyed_ingest() -> bool:
    return budget() != INGEST or _presented_key() is None


def retry_after() -> str:
    """Seconds until the breached limit's window resets (at least 1)."""
    limiter = current_state().rate_limiter
    breached = limiter.current_limit if limiter is not None else None
    if breached is None:
        return "60"
    return str(max(1, math.ceil(breached.reset_at - time.time())))


def install_rate_limits(app: Flask, settings: Settings) -> Limiter | None:
    """Create this app's limiter on the umetrics blueprints (None when switched off)."""
    if not settings["UMETRICS_RATELIMIT_ENABLED"]:
        return None
    limiter = Limiter(
        client_ip,
        storage_uri=settings["UMETRICS_RATELIMIT_STORAGE_URI"],
        key_prefix="umetrics",
        # Only the 429 carries Retry-After (router.py): Flask-Limiter's own headers would also
        # raise the Retry-After of a 503 to the end of the rate-limit window.
        headers_enabled=False,
        # A storage outage (Redis down) must not stop ingestion: log it and let requests through.
        swallow_errors=True,
        # The host's RATELIMIT_DEFAULT / RATELIMIT_APPLICATION limits are its own limiter's job.
        default_limits_exempt_when=lambda: True,
        application_limits_exempt_when=lambda: True,
    )
    limiter.request_filter(lambda: budget() is None)
    limits = [
        limiter.shared_limit(
            settings["UMETRICS_RATELIMIT_INGEST"], scope="ingest-ip", exempt_when=_not_ingest
        ),
        limiter.shared_limit(
            settings["UMETRICS_RATELIMIT_PUBLIC"],
            scope="public-ip",
            exempt_when=lambda: budget() != PUBLIC,
        ),
        limiter.shared_limit(
            settings["UMETRICS_RATELIMIT_PER_KEY"],
            scope="ingest-key",
            key_func=key_identity,
            exempt_when=_not_keyed_ingest,
        ),
    ]
    for name in BLUEPRINTS:
        blueprint = app.blueprints.get(name)
        if blueprint is not None:
            for limit in limits:
                limit(cast(Blueprint, blueprint))
    limiter.init_app(app)
    return limiter
