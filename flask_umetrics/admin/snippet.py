"""The Jinja helper ``umetrics_snippet()``: loads ``umetrics.js`` with the scope's write key.

Ingest keys are stored hashed, so the page's write key cannot be read back from the database: it
comes from ``UMETRICS_BROWSER_WRITE_KEY`` (or the ``write_key`` argument). Without one the helper
raises :class:`ConfigurationError` naming the setting when the app runs in debug or testing mode;
in production it renders an HTML comment and logs a warning (once per process, not per page), so
a missing key never breaks a page.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, current_app, has_request_context, request, url_for
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup, escape

from ..errors import ConfigurationError, ValidationError
from ..flags.request import current_flags
from ..state import current_state, resolve_scope
from ..warn_once import warn_once

SETTING = "UMETRICS_BROWSER_WRITE_KEY"
#: CSP nonces are base64 / base64url text.
_NONCE_PATTERN = re.compile(r"[A-Za-z0-9+/_=-]{1,256}")
#: Options the client knows (umetrics.js header), by their Python names.
OPTIONS = {
    "consent": "consent",
    "require_consent": "requireConsent",
    "track_before_consent": "trackBeforeConsent",
    "respect_dnt": "respectDnt",
    "auto_pageviews": "autoPageviews",
    "track_clicks": "trackClicks",
    "session_timeout": "sessionTimeout",
    "flush_interval": "flushInterval",
    "batch_size": "batchSize",
    "max_queue": "maxQueue",
    "max_retries": "maxRetries",
    "identify": "identify",
    "traits": "traits",
    "debug": "debug",
}
#: The stub records calls made before the script has loaded: ``umetrics("track", ...)`` or
#: ``umetrics.push(["track", ...])``.
STUB = (
    "!function(w){var u=w.umetrics=w.umetrics||function(){u.q.push(arguments)};"
    "u.q=u.q||[];u.push=u.push||function(c){u.q.push(c)};u.config=%s}(window);"
)


def client_config(write_key: str, scope_id: str | None = None, **options: Any) -> dict[str, Any]:
    """The options object of the snippet: the API prefix, key, scope and the client's options.

    ``consent`` (None: undecided) defaults to True when the server knows this visitor consented
    (the consent cookie or the host's consent loader), so a returning visitor is remembered.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(
            f"umetrics_snippet() got an unknown option {unknown[0]!r}; known: {', '.join(OPTIONS)}"
        )
    state = current_state()
    scope = resolve_scope(scope_id)
    root = request.script_root if has_request_context() else ""
    config: dict[str, Any] = {
        "api": root + state.settings["UMETRICS_URL_PREFIX"],
        "writeKey": write_key,
        "scopeId": scope,
        "sessionTimeout": state.settings["UMETRICS_SESSION_TIMEOUT"],
    }
    if has_request_context():
        flags = current_flags(scope)
        if options.get("consent") is None:
            # The consent cookie (or the host's consent loader) says yes; otherwise undecided:
            # only the host knows of a refusal (the cookie is cleared then) and passes False.
            options["consent"] = True if flags.consent else None
        if flags.consent and flags.cookie is not None:
            # Experiments know this visitor by the cookie's anonymous id: events use it too.
            config["anonymousId"] = flags.cookie.anon_id
    config.update({OPTIONS[name]: value for name, value in options.items()})
    return config


def umetrics_snippet(
    write_key: str | None = None,
    scope_id: str | None = None,
    nonce: str | None = None,
    **options: Any,
) -> Markup:
    """The stub and options ``<script>`` plus ``<script async src=".../umetrics.js">``.

    ``options`` are the client's options by their Python names (``track_before_consent=True``);
    an unknown name is a ``TypeError``. ``nonce`` goes on both tags for a CSP ``script-src``.
    """
    settings = current_state().settings
    key = write_key or settings[SETTING]
    if not key:
        message = (
            f"umetrics_snippet(): no write key; set {SETTING} to an ingest key of the scope "
            "(`flask umetrics keys create --permission ingest`) or pass write_key="
        )
        if current_app.debug or current_app.testing:
            raise ConfigurationError(message)
        warn_once(SETTING, "%s", message)
        return Markup(f"<!-- umetrics: browser client off, {SETTING} is not set -->")
    if not settings["UMETRICS_ENABLE_API"] or not settings["UMETRICS_ENABLE_ADMIN"]:
        raise ConfigurationError(
            "umetrics_snippet() needs UMETRICS_ENABLE_API (ingestion) and UMETRICS_ENABLE_ADMIN "
            "(serves umetrics.js)"
        )
    nonce_attr = ""
    if nonce is not None:
        if _NONCE_PATTERN.fullmatch(nonce) is None:
            raise ValidationError("nonce", "must be base64 text (a CSP nonce)")
        nonce_attr = f' nonce="{escape(nonce)}"'
    config = htmlsafe_json_dumps(client_config(key, scope_id, **options))
    src = escape(url_for("umetrics_client.static", filename="umetrics.js"))
    return Markup(
        f"<script{nonce_attr}>{STUB % config}</script>\n"
        f'<script async src="{src}"{nonce_attr}></script>'
    )


def install_snippet_helper(app: Flask) -> None:
    """Register the Jinja global ``umetrics_snippet(write_key=None, scope_id=None, **options)``."""
    app.jinja_env.globals.setdefault("umetrics_snippet", umetrics_snippet)
