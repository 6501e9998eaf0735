"""What a browser request itself says about its events: recorded consent and the gtag client id.

GA4 forwarding is opt-in: only events whose person or event recorded ``"$consent": true`` leave
for Google. A visitor records consent through the consent cookie (``POST /api/consent``) or the
host's ``@umetrics.consent_loader``; the events a browser sends with that cookie (umetrics.js
sends credentials) are stamped here. The ``_ga`` cookie gtag.js sets for the same site is kept
as ``$ga_client_id`` so forwarded hits join the browser's GA4 user. Values the event already
carries win; a request without recorded consent adds nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from flask import request

from ..flags.cookie import decode_cookie
from ..state import current_state

CONSENT_PROPERTY = "$consent"
GA_CLIENT_ID_PROPERTY = "$ga_client_id"
#: The first-party cookie gtag.js keeps its client id in.
GA_COOKIE = "_ga"


def recorded_consent() -> bool | None:
    """The request's recorded choice: the consent loader's answer, else the consent cookie's;
    None when neither says (a default is not a record)."""
    state = current_state()
    loader = state.extension.consent_loader_callback
    decided = loader() if loader is not None else None
    if decided is not None:
        return bool(decided)
    settings = state.settings
    name = settings["UMETRICS_COOKIE_NAME"]
    cookie = decode_cookie(
        state.cookie_keyring,
        request.cookies.get(name),
        name=name,
        max_age_seconds=int(settings["UMETRICS_COOKIE_MAX_AGE_DAYS"]) * 86400,
        now=int(time.time()),
    )
    return None if cookie is None else cookie.consent


def request_marks() -> dict[str, Any]:
    """Properties this request adds to each of its events (empty without recorded consent)."""
    if recorded_consent() is not True:
        return {}
    marks: dict[str, Any] = {CONSENT_PROPERTY: True}
    ga_cookie = request.cookies.get(GA_COOKIE)
    if ga_cookie and len(ga_cookie) <= 100:
        marks[GA_CLIENT_ID_PROPERTY] = ga_cookie
    return marks


def mark_events(batch: Sequence[Any], marks: dict[str, Any]) -> list[Any]:
    """``batch`` with ``marks`` added to each event's properties (an event's own value wins);
    anything that is not an event object is passed on untouched for validation to name."""
    if not marks:
        return list(batch)
    marked: list[Any] = []
    for raw in batch:
        if isinstance(raw, dict):
            properties = raw.get("properties")
            if properties is None or isinstance(properties, dict):
                raw = {**raw, "properties": {**marks, **(properties or {})}}
        marked.append(raw)
    return marked
