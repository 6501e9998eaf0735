"""The GA4 browser tag (gtag.js), emitted only for visitors who consented.

The snippet is the one Google documents, with Consent Mode v2 defaults: with consent we grant
``analytics_storage`` only; ad storage, ad user data and ad personalisation stay denied because
this extension never asks for advertising consent. Without consent, or with a measurement id that
is not a GA4 id, the helper returns empty markup: no Google script reaches a visitor who said no,
and nothing unvalidated is ever written into the page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from flask import Flask, has_request_context
from markupsafe import Markup, escape

from ..errors import ValidationError
from ..flags.request import current_flags
from ..state import resolve_scope

#: A GA4 web stream measurement id, e.g. ``G-ABC123XYZ9``.
MEASUREMENT_ID_PATTERN = re.compile(r"G-[A-Z0-9]{4,20}")
#: CSP nonces are base64 / base64url text; anything else is a caller's mistake.
_NONCE_PATTERN = re.compile(r"[A-Za-z0-9+/_=-]{1,256}")
GTAG_SRC = "https://www.googletagmanager.com/gtag/js?id="

#: Consent Mode v2 state sent before any measurement (only ever rendered with consent).
CONSENT_DEFAULTS = {
    "ad_storage": "denied",
    "ad_user_data": "denied",
    "ad_personalization": "denied",
    "analytics_storage": "granted",
}


def is_measurement_id(value: object) -> bool:
    """Whether ``value`` is a GA4 web measurement id (the whole string, no surrounding text)."""
    return isinstance(value, str) and MEASUREMENT_ID_PATTERN.fullmatch(value) is not None


def gtag_snippet(
    measurement_id: str | None,
    *,
    consent: bool,
    nonce: str | None = None,
    debug: bool = False,
) -> Markup:
    """The gtag.js loader and config for ``measurement_id``, or empty markup.

    Empty unless ``consent`` is true and the id is a valid GA4 id. ``nonce`` is added to both
    script tags for a Content-Security-Policy ``script-src 'nonce-…'``; ``debug`` turns on GA4's
    DebugView for this page.
    """
    if not consent or not is_measurement_id(measurement_id):
        return Markup("")
    assert measurement_id is not None
    nonce_attr = ""
    if nonce is not None:
        if _NONCE_PATTERN.fullmatch(nonce) is None:
            raise ValidationError("nonce", "must be base64 text (a CSP nonce)")
        nonce_attr = f' nonce="{escape(nonce)}"'
    id_js = json.dumps(measurement_id)
    options = ', {"debug_mode": true}' if debug else ""
    return Markup(
        f'<script async src="{GTAG_SRC}{measurement_id}"{nonce_attr}></script>\n'
        f"<script{nonce_attr}>\n"
        "  window.dataLayer = window.dataLayer || [];\n"
        "  function gtag(){dataLayer.push(arguments);}\n"
        f"  gtag('consent', 'default', {json.dumps(CONSENT_DEFAULTS)});\n"
        "  gtag('js', new Date());\n"
        f"  gtag('config', {id_js}{options});\n"
        "</script>"
    )


def install_gtag_helper(app: Flask, measurement_id_for_scope: Callable[[str], str | None]) -> None:
    """Register the Jinja global ``umetrics_gtag(scope_id=None, nonce=None, debug=False)``.

    Consent comes from the request's flag context (consent cookie, Do-Not-Track / GPC, the host's
    consent loader); ``measurement_id_for_scope`` is asked only when the visitor consented.
    """

    def umetrics_gtag(
        scope_id: str | None = None, nonce: str | None = None, debug: bool = False
    ) -> Markup:
        if not has_request_context():
            return Markup("")
        scope = resolve_scope(scope_id)
        if not current_flags(scope).consent:
            return Markup("")
        return gtag_snippet(measurement_id_for_scope(scope), consent=True, nonce=nonce, debug=debug)

    app.jinja_env.globals["umetrics_gtag"] = umetrics_gtag
