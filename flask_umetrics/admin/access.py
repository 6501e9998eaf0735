"""Who may see a dashboard page: the scope a page is about, and the permission checks on it.

Pages take their scope from ``?scope_id=`` (or a form's ``scope_id``), so one dashboard serves a
host with many scopes; every check goes through :func:`flask_umetrics.auth.authorize`, the same
gate as the REST API (API keys in ``Authorization: Bearer`` work too).
"""

from __future__ import annotations

from flask import g, request

from ..auth import Principal, authorize
from ..errors import APIError, ValidationError
from ..state import current_state
from ..validation import validate_scope_id


def current_scope() -> str:
    """The scope of this page: ``scope_id`` from the query or form, else the default scope."""
    raw = request.args.get("scope_id") or request.form.get("scope_id")
    if not raw:
        return current_state().settings.default_scope
    try:
        return validate_scope_id(raw)
    except ValidationError as exc:
        raise APIError(400, "validation_error", str(exc)) from exc


def require(permission: str) -> Principal:
    """The principal of this request, or a 401/403 ``APIError`` shown as an error page."""
    return authorize(permission, current_scope())


def can_manage() -> bool:
    """Whether the current visitor may change things (to show or hide edit controls)."""
    cached = g.get("umetrics_admin_can_manage")
    if cached is None:
        try:
            authorize("metrics.manage", current_scope())
            cached = True
        except APIError:
            cached = False
        g.umetrics_admin_can_manage = cached
    return bool(cached)


def actor() -> str | None:
    """The audit-log actor of this request (``user:<id>`` or ``key:<id>``)."""
    principal: Principal | None = g.get("umetrics_principal")
    return principal.actor if principal is not None else None
