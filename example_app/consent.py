"""Consent to experiments: the demo's cookie key, accounts' terms, and the banner for visitors.

**Cookie key.** flask-umetrics encrypts its consent cookie with keys from the environment
(``UMETRICS_COOKIE_KEY_CURRENT`` and ``UMETRICS_COOKIE_KEY_<id>``); production sets them from
``flask umetrics gen-cookie-key`` through its secret store. So that ``make demo`` works without
exporting anything, ``seed-demo`` writes a key to ``instance/cookie-key.txt`` (once: later seeds
keep it, so visitors' cookies stay readable) and ``create_app`` copies that file into
``os.environ``, and only when ``UMETRICS_COOKIE_KEY_CURRENT`` is not set.

**Accounts.** Signing up accepts the terms, which cover product analytics and experiments, so a
logged-in user counts as consenting (unless the browser sends Do-Not-Track or Global Privacy
Control). That consent belongs to the account, not the browser: no consent cookie is issued for
it, so after logging out the visitor is asked like anyone else.

**Banner.** Anonymous visitors who have not decided see a banner whose buttons POST to
``/umetrics/api/consent``. "Yes" sets the encrypted consent cookie; "No" clears it and leaves
nothing behind, so the app remembers either answer itself in ``acme_consent`` (just ``yes`` or
``no``, no identifier), which keeps the banner from asking again. With the browser client on, the
banner answers through ``umetrics.setConsent(...)``, and a "No" is passed to the snippet so the
client sends nothing on later pages either.

**Before any answer** the app stores nothing about the visitor, with one exception that needs no
consent: a page with a form (sign up, log in) puts that form's CSRF token in Flask's session
cookie (HttpOnly, holding only the token; see :mod:`example_app.web_security`).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

from flask import Flask, Response, current_app, request

from flask_umetrics import current_anonymous_id
from flask_umetrics.flags.cookie import ENV_CURRENT, ENV_PREFIX, generate_cookie_key

from .analytics import umetrics
from .auth import current_user

KEY_FILE = "cookie-key.txt"
KEY_ID = "demo"
CHOICE_COOKIE = "acme_consent"
CHOICE_MAX_AGE = 365 * 86400


def write_cookie_key(instance_path: str) -> tuple[str, bool]:
    """Create the demo key file unless it exists: ``(path, created)``."""
    path = os.path.join(instance_path, KEY_FILE)
    if os.path.exists(path):
        return path, False
    os.makedirs(instance_path, exist_ok=True)
    content = (
        "# The demo's consent-cookie key, written once by `flask --app example_app seed-demo`.\n"
        "# create_app loads it when UMETRICS_COOKIE_KEY_CURRENT is not set; production sets\n"
        "# the variables itself (`flask umetrics gen-cookie-key`) and never uses this file.\n"
        f"{ENV_CURRENT}={KEY_ID}\n"
        f"{ENV_PREFIX}{KEY_ID}={generate_cookie_key()}\n"
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(content)
    return path, True


def load_cookie_key(instance_path: str, environ: MutableMapping[str, str] | None = None) -> bool:
    """Copy the demo key file's variables into ``environ`` (``os.environ``) unless a current key
    is configured already; True when it did. Call before ``umetrics.init_app`` reads them."""
    target = os.environ if environ is None else environ
    path = os.path.join(instance_path, KEY_FILE)
    if ENV_CURRENT in target or not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            name, sep, value = line.strip().partition("=")
            if sep and name.startswith(ENV_PREFIX):
                target[name] = value
    return ENV_CURRENT in target


def _opted_out() -> bool:
    return request.headers.get("DNT") == "1" or request.headers.get("Sec-GPC") == "1"


def anonymous_id() -> str | None:
    """The consent cookie's anonymous id, if this visitor consented (None otherwise).

    Call it before logging someone in: it builds the request's flag context for the subject of
    that moment.
    """
    return current_anonymous_id()


@umetrics.consent_loader
def account_consent() -> bool | None:
    """A logged-in user consented with the terms: their assignments may be stored. Anonymous
    visitors: None, so the consent cookie (the banner's answer) decides."""
    if current_user() is not None and not _opted_out():
        return True
    return None


def _consent_path() -> str:
    return str(current_app.config["UMETRICS_URL_PREFIX"]) + "/api/consent"


def _remember_choice(response: Response) -> Response:
    """After a successful ``POST /umetrics/api/consent``, remember the answer for the banner."""
    if request.method != "POST" or request.path != _consent_path():
        return response
    body = response.get_json(silent=True) if response.status_code == 200 else None
    if isinstance(body, dict) and isinstance(body.get("consent"), bool):
        response.set_cookie(
            CHOICE_COOKIE,
            "yes" if body["consent"] else "no",
            max_age=CHOICE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
        )
    return response


def show_banner() -> bool:
    """Anonymous, undecided, not opted out by the browser, and an endpoint to answer to."""
    if current_user() is not None or not current_app.config.get("UMETRICS_ENABLE_API"):
        return False
    if request.cookies.get(CHOICE_COOKIE) in ("yes", "no") or _opted_out():
        return False
    return current_anonymous_id() is None


def refused() -> bool:
    """An anonymous visitor answered "No" (the browser client then sends nothing)."""
    return current_user() is None and request.cookies.get(CHOICE_COOKIE) == "no"


def _banner_context() -> dict[str, Any]:
    return {
        "consent_banner": show_banner(),
        "consent_url": _consent_path(),
        "consent_refused": refused(),
    }


def init_app(app: Flask) -> None:
    app.after_request(_remember_choice)
    app.context_processor(_banner_context)
