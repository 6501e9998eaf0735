"""Request-level protections of the app's own pages: CSRF tokens on its forms, and ProxyFix.

**CSRF.** Every POST form of the app (log in, sign up, log out, notes, upgrade) carries Flask-WTF's
session-bound token (``{{ csrf_token() }}``), checked by ``CSRFProtect`` before the view runs, so
another site cannot submit them with a visitor's session. flask-umetrics' own routes are exempt
from this check: its dashboard checks its own tokens, and its REST API authenticates by API key or
checks the request's origin itself (the consent banner posts JSON there, same-origin).

**Behind a proxy.** With TLS ended at a reverse proxy the app sees plain HTTP, so
``request.is_secure`` is False and cookies set with ``secure=request.is_secure`` (the consent
cookie, the visitor and choice cookies) lose ``Secure``. ``EXAMPLE_TRUSTED_PROXIES=N`` (the number
of proxies in front of the app) wraps the app in Werkzeug's ``ProxyFix``, which takes the scheme,
host and client address from the ``X-Forwarded-*`` headers those proxies set. Only set it when a
proxy is really there: otherwise any client could claim to be on HTTPS or another address.
"""

from __future__ import annotations

import os

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

PROXIES_ENV = "EXAMPLE_TRUSTED_PROXIES"

csrf = CSRFProtect()


def protect_forms(app: Flask) -> None:
    """CSRF checks on the app's POSTs; call after ``umetrics.init_app`` registered its routes."""
    csrf.init_app(app)
    for blueprint in app.blueprints.values():
        if blueprint.import_name.startswith("flask_umetrics"):
            csrf.exempt(blueprint)


def trusted_proxies(app: Flask) -> int:
    """How many proxies to trust: the ``EXAMPLE_TRUSTED_PROXIES`` setting or variable (0: none)."""
    value = app.config.get(PROXIES_ENV, os.environ.get(PROXIES_ENV, "0"))
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise RuntimeError(f"{PROXIES_ENV} must be a whole number, not {value!r}") from None
    if count < 0:
        raise RuntimeError(f"{PROXIES_ENV} must not be negative")
    return count


def apply_proxy_fix(app: Flask) -> None:
    """Trust ``X-Forwarded-For/-Proto/-Host/-Port`` from that many proxies (none by default)."""
    count = trusted_proxies(app)
    if count:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count
        )
