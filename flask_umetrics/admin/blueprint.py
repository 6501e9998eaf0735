"""The dashboard blueprint: one gate for every page, error pages, and what templates share.

Every page needs ``metrics.view`` on its scope; every POST needs ``metrics.manage`` and a valid
CSRF token. Refusals render an HTML page with the status (401, 403, 400), never JSON, and a 401
redirects to ``UMETRICS_ADMIN_LOGIN_URL`` when the host set one.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from ..api.router import retry_after_timeout
from ..errors import APIError, UMetricsError
from ..queries.connection import QueryTimeout
from ..state import current_state
from . import formatting
from .access import can_manage, current_scope, require
from .csrf import FIELD_NAME, check_csrf, csrf_token
from .date_presets import date_presets
from .errors import AdminError
from .pages import PAGES
from .pages.date_range import previous_text

logger = logging.getLogger("flask_umetrics")

#: The navigation, in order: (endpoint, label).
NAV: list[tuple[str, str]] = [(page.endpoint, page.label) for page in PAGES if page.label]


def create_admin_blueprint() -> Blueprint:
    """A fresh blueprint (one per app); register it at ``{prefix}/admin``."""
    bp = Blueprint(
        "umetrics_admin",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/assets",
    )
    bp.before_request(_gate)
    bp.after_request(_page_headers)
    bp.context_processor(_template_context)
    for name, function in formatting.FILTERS.items():
        bp.add_app_template_filter(function, name)
    bp.register_error_handler(APIError, _api_error_page)
    bp.register_error_handler(AdminError, _admin_error_page)
    bp.register_error_handler(UMetricsError, _library_error_page)
    bp.register_error_handler(QueryTimeout, _query_timeout_page)
    for page in PAGES:
        page.register(bp)
    return bp


#: The 500 page of a dashboard without ``SECRET_KEY`` (its forms and the host's login need it).
MISSING_SECRET_KEY = (
    "The dashboard needs the app's SECRET_KEY, which is not set: its forms are signed with it, "
    "and the login session of the host app needs it too. Set app.config['SECRET_KEY'] to a "
    "random secret kept outside the code (e.g. the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), then restart the app."
)


def _gate() -> Response | None:
    if request.endpoint == "umetrics_admin.static":
        return None
    if not current_app.secret_key:
        # Checked per request, so a host that sets SECRET_KEY after init_app is fine.
        return _error_page(500, MISSING_SECRET_KEY)
    try:
        require("metrics.view")
    except APIError as error:
        login_url = current_state().settings["UMETRICS_ADMIN_LOGIN_URL"]
        if error.status == 401 and login_url:
            separator = "&" if "?" in login_url else "?"
            here = request.full_path if request.query_string else request.path
            target = login_url + separator + urlencode({"next": here})
            return redirect(target)  # type: ignore[return-value]
        raise
    if request.method == "POST":
        require("metrics.manage")
        check_csrf()
    return None


#: The dashboard loads only its own scripts, stylesheet and API: no inline script, inline style
#: or ``style=""`` attribute, eval, foreign origin, plugin, frame or ``<base>``. An HTML injection
#: that slipped past escaping could then neither run script nor send data elsewhere. Forms post
#: only here, and to Google's OAuth page: "Connect with Google" is a POST answered with a redirect
#: there, and browsers apply ``form-action`` to that redirect too.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
)


def content_security_policy(oauth_auth_uri: str) -> str:
    """The dashboard's policy, letting forms reach the configured OAuth endpoint's origin."""
    parts = urlsplit(oauth_auth_uri)
    form_action = "form-action 'self'"
    if parts.scheme in ("http", "https") and parts.netloc:
        form_action += f" {parts.scheme}://{parts.netloc}"
    return "; ".join((*CONTENT_SECURITY_POLICY, form_action))


def _page_headers(response: Response) -> Response:
    """Dashboard pages hold personal data: no shared or browser cache keeps them, no other site
    frames them, and the content security policy above applies to every page (and its errors)."""
    if request.endpoint != "umetrics_admin.static":
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        oauth_auth_uri = current_state().settings["UMETRICS_GA4_OAUTH_AUTH_URI"]
        response.headers.setdefault(
            "Content-Security-Policy", content_security_policy(oauth_auth_uri)
        )
    return response


def page_url(endpoint: str, **args: Any) -> str:
    """A dashboard URL that keeps this page's scope (``None`` values are left out)."""
    values = {key: value for key, value in args.items() if value is not None}
    scope = request.args.get("scope_id")
    if scope and "scope_id" not in values:
        values["scope_id"] = scope
    return url_for(endpoint, **values)


def csv_url(table_key: str) -> str:
    """This page with the same parameters, answering one table as CSV."""
    args = request.args.to_dict(flat=False)
    args["format"] = ["csv"]
    args["table"] = [table_key]
    return request.path + "?" + urlencode(args, doseq=True)


def _csrf_field() -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        FIELD_NAME, escape(csrf_token())
    )


def _template_context() -> dict[str, Any]:
    state = current_state()
    prefix = state.settings["UMETRICS_URL_PREFIX"]
    try:
        scope_id = current_scope()
    except APIError:  # the error page of a bad scope_id still renders
        scope_id = state.settings.default_scope
    return {
        "nav": NAV,
        "scope_id": scope_id,
        "api_base": prefix + "/api",
        "page_url": page_url,
        "csv_url": csv_url,
        "csrf_field": _csrf_field,
        "can_manage": can_manage,
        "stat_value": formatting.stat_value,
        "date_presets": date_presets,
        "previous_text": previous_text,
        "time_zone_name": state.settings.timezone,
    }


def _error_page(
    status: int, message: str, headers: dict[str, str] | None = None, title: str | None = None
) -> Response:
    titles = {400: "Bad request", 401: "Log in required", 403: "Forbidden", 404: "Not found"}
    body = render_template(
        "umetrics_admin/error.html",
        title=title or titles.get(status, "Error"),
        status=status,
        message=message,
    )
    response = current_app.make_response((body, status))
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _api_error_page(error: APIError) -> Response:
    return _error_page(error.status, error.message, error.headers)


def _admin_error_page(error: AdminError) -> Response:
    return _error_page(error.status, error.message)


def _query_timeout_page(error: QueryTimeout) -> Response:
    """A report that ran past ``UMETRICS_QUERY_TIMEOUT_SECONDS``: a page saying so (503)."""
    logger.warning(
        "flask-umetrics: dashboard %s ran past the %g s report timeout", request.path, error.seconds
    )
    headers = {"Retry-After": retry_after_timeout(error)}
    return _error_page(503, str(error), headers, title="Report timed out")


def _library_error_page(error: UMetricsError) -> Response:
    """A ``ValidationError`` from a report is the visitor's mistake: a 400 naming the field."""
    field = getattr(error, "field", None)
    if field is None:
        raise error
    return _error_page(400, str(error))
