"""Cross-site request forgery defence for requests that carry no API key.

A request without a key acts with ambient authority: the host's login cookie (through
``@umetrics.authorizer``) or the visitor's consent cookie. A page on another site can make the
browser send those cookies, so such a request may change something only when

* it comes from this site: its ``Origin`` is the request's own origin or one listed in
  ``UMETRICS_ALLOWED_ORIGINS``, and it is not marked ``Sec-Fetch-Site: cross-site`` (403
  ``cross_site_request`` otherwise), and
* its body, if it has one, says ``Content-Type: application/json`` (415
  ``unsupported_media_type`` otherwise; a request without a body may omit the header, but may
  not name another type). A cross-site page can send only form and ``text/plain`` bodies
  without a CORS preflight (forms always name their type), and a preflight is answered only for
  allowed origins.

A request with neither ``Origin`` nor ``Sec-Fetch-Site`` is let through to the content-type
check: every browser of the last years sends ``Origin`` on a POST, PUT, PATCH or DELETE (and
``Sec-Fetch-Site`` on all requests), so such a request comes from a non-browser client, which
holds its own cookies and forges nothing, or from a browser too old to send them, which still
cannot send JSON across sites without a preflight.

Requests with a key (``Authorization: Bearer``, ``X-UMetrics-Key``, or an ingest key in the
body) are not checked: the key is not ambient, a page on another site has to know it.
"""

from __future__ import annotations

from flask import request

from ..config import normalize_origin
from ..errors import APIError
from ..state import current_state

#: Methods that may change something (GET, HEAD and OPTIONS must not).
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_MEDIA_TYPE = "application/json"


def own_origin() -> str:
    """This request's own origin, from its scheme and ``Host`` (a proxy needs ``ProxyFix``)."""
    raw = f"{request.scheme}://{request.host}"
    try:
        return normalize_origin(raw)
    except ValueError:  # a malformed Host header (no browser sends one): matches no origin
        return raw


def allowed_origins() -> list[str]:
    return list(current_state().settings["UMETRICS_ALLOWED_ORIGINS"])


def origin_is_trusted(origin: str) -> bool:
    """Whether a page at ``origin`` may act with this site's cookies."""
    try:
        normalized = normalize_origin(origin)
    except ValueError:  # "null" (sandboxed frames, file: pages) or garbage
        return False
    own = own_origin()
    # Behind a TLS-terminating proxy without ProxyFix the app sees http:// while the page is
    # https:// on the same host; only that host can serve the https page, so it is the same site.
    upgraded = own.startswith("http://") and normalized == "https://" + own[len("http://") :]
    return normalized == own or upgraded or normalized in allowed_origins()


def cross_site_reason() -> tuple[str, str] | None:
    """The header that shows this request is cross-site and why, or None when it is not."""
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin_is_trusted(origin):
            return None
        return "Origin", (
            f"Origin {origin!r} is neither this site ({own_origin()}) nor in "
            "UMETRICS_ALLOWED_ORIGINS."
        )
    if request.headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site":
        return "Sec-Fetch-Site", "The browser marked this request Sec-Fetch-Site: cross-site."
    return None


def refuse_cross_site() -> None:
    """403 ``cross_site_request`` when the request comes from a page on another site."""
    found = cross_site_reason()
    if found is not None:
        field, reason = found
        raise APIError(
            403,
            "cross_site_request",
            "Refused a cross-site request made with this site's cookies: " + reason,
            [{"field": field, "message": "must be this site or in UMETRICS_ALLOWED_ORIGINS"}],
        )


def refuse_cross_site_write() -> None:
    """403 ``cross_site_request`` / 415 ``unsupported_media_type`` for a state-changing request
    that acts with ambient (cookie) authority; see the module docstring. Call it before the body
    is read and before anything is changed."""
    if request.method not in STATE_CHANGING:
        return
    refuse_cross_site()
    has_body = bool(request.content_length) or "Transfer-Encoding" in request.headers
    if request.mimetype != JSON_MEDIA_TYPE and (request.mimetype or has_body):
        sent = request.mimetype or "none"
        raise APIError(
            415,
            "unsupported_media_type",
            f"Content-Type must be {JSON_MEDIA_TYPE} for a request without an API key "
            f"(got {sent}).",
            [{"field": "Content-Type", "message": f"must be {JSON_MEDIA_TYPE}"}],
        )
