"""CSRF protection of dashboard forms, with Flask-WTF's session-bound signed tokens.

Only the dashboard's own POSTs are checked (the host app's forms are its own business), so the
global ``CSRFProtect`` is not installed. Tokens need the host's ``SECRET_KEY``.
"""

from __future__ import annotations

from flask import current_app, request
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms.validators import ValidationError as WTFValidationError

from ..errors import ConfigurationError
from .errors import AdminError

FIELD_NAME = "csrf_token"


def csrf_token() -> str:
    """A token for a form on this page (``{{ csrf_field() }}`` writes the hidden input)."""
    if not current_app.secret_key:
        raise ConfigurationError(
            "The umetrics dashboard needs the app's SECRET_KEY to protect its forms (CSRF)."
        )
    return str(generate_csrf())


def check_csrf() -> None:
    """Refuse a POST whose token is missing, expired, or from another session."""
    token = request.form.get(FIELD_NAME) or request.headers.get("X-CSRFToken")
    try:
        validate_csrf(token)
    except WTFValidationError as exc:
        raise AdminError(
            400,
            f"The form was refused ({exc}). It expired or was not sent by this dashboard: "
            "reload the page and try again.",
        ) from exc
