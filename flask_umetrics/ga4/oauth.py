"""The Google OAuth web flow that connects a scope to GA4 with a user's own Google account.

:func:`start_oauth` returns Google's consent URL; Google sends the browser back to the app's
callback, which calls :func:`finish_oauth` with ``state`` and ``code``. The ``state`` is a
random flow id signed with the app's ``SECRET_KEY`` (itsdangerous), so a forged or altered
callback is refused before anything is looked up. The PKCE code verifier never leaves the
server: it is stored encrypted in ``umetrics_ga4_oauth_flows`` under the flow id, used once and
deleted. Offline access with ``prompt=consent`` makes Google issue the refresh token that is
stored (encrypted) as the connection. The authorization code, tokens and verifier are never
logged: ``requests_oauthlib`` logs token responses at DEBUG, so its logger is muted during the
exchange.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from oauthlib.oauth2.rfc6749.errors import (  # type: ignore[import-untyped]
    InsecureTransportError,
    OAuth2Error,
)
from requests import RequestException
from sqlalchemy import delete, insert, select

from ..audit import current_actor
from ..db.tables import ga4_oauth_flows
from ..db.types import utcnow
from ..errors import APIError
from ..state import current_state, resolve_scope
from .connections import (
    ANALYTICS_EDIT,
    ANALYTICS_READONLY,
    Connection,
    oauth_client_secret,
    save_oauth_tokens,
)
from .secrets import decrypt_secret, encrypt_secret, verifier_purpose

logger = logging.getLogger(__name__)

STATE_SALT = "umetrics-ga4-oauth"
#: How long a started flow may take (consent screen included) before its callback is refused.
FLOW_TTL_SECONDS = 600
#: Loggers that write authorization codes, verifiers or tokens at DEBUG.
SENSITIVE_LOGGERS = ("requests_oauthlib.oauth2_session",)
MAX_CODE_LENGTH = 2048

_REDIRECT_URI = re.compile(r"https?://[^\s/?#]+[^\s#]*")
_exchanging: ContextVar[bool] = ContextVar("umetrics_ga4_oauth_exchanging", default=False)


class _MuteDuringExchange(logging.Filter):
    """Drops every record of a sensitive logger while this context exchanges a code."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _exchanging.get()


_MUTE = _MuteDuringExchange()
for _name in SENSITIVE_LOGGERS:
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _MuteDuringExchange) for f in _logger.filters):
        _logger.addFilter(_MUTE)


#: The dashboard's callback (a browser redirect carrying the dashboard session), else the API's.
CALLBACK_ENDPOINTS = ("umetrics_admin.ga4_oauth_callback", "umetrics_api.ga4_oauth_callback")


def oauth_callback_url() -> str:
    """The app's one OAuth redirect URI, for the dashboard and the REST flow alike.

    ``UMETRICS_GA4_OAUTH_REDIRECT_URI`` when set (an exact URL registered at Google), else the
    dashboard's callback, else the API's, built from the request (behind a TLS proxy, apply
    ``werkzeug.middleware.proxy_fix.ProxyFix`` so the scheme is ``https``) or, outside a
    request, ``SERVER_NAME`` and ``PREFERRED_URL_SCHEME``. The scope never appears in it: it
    travels in the signed state.
    """
    configured = current_state().settings["UMETRICS_GA4_OAUTH_REDIRECT_URI"]
    if configured:
        return str(configured)
    for endpoint in CALLBACK_ENDPOINTS:
        if endpoint.split(".")[0] in current_app.blueprints:
            return url_for(endpoint, _external=True)
    raise APIError(409, "ga4_oauth_not_configured", "No OAuth callback route is registered.")


def start_oauth(
    scope_id: str | None,
    *,
    redirect_uri: str,
    actor: str | None = None,
    provisioning: bool = False,
) -> str:
    """Google's authorization URL for connecting ``scope_id``; the browser is sent there.

    ``provisioning=True`` also asks for ``analytics.edit`` so a property can be created.
    """
    scope = resolve_scope(scope_id)
    if not isinstance(redirect_uri, str) or not _REDIRECT_URI.fullmatch(redirect_uri):
        raise APIError(400, "invalid_redirect_uri", "redirect_uri must be an absolute http(s) URL.")
    client_id, client_secret = _client()
    serializer = _serializer()
    scopes = [ANALYTICS_READONLY, ANALYTICS_EDIT] if provisioning else [ANALYTICS_READONLY]
    state_id = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(72)  # 96 characters; PKCE allows 43-128 of [A-Za-z0-9-._~]
    state = serializer.dumps({"sid": state_id, "scope": scope})
    encrypted_verifier = encrypt_secret(verifier, purpose=verifier_purpose(state_id))
    flow = _flow(client_id, client_secret, scopes, redirect_uri, verifier)
    try:
        url, _ = flow.authorization_url(access_type="offline", prompt="consent", state=state)
    except (OAuth2Error, RequestException) as exc:
        raise _oauth_error(exc, "UMETRICS_GA4_OAUTH_AUTH_URI") from None
    finally:
        flow.oauth2session.close()
    now = utcnow()
    with current_state().engine.begin() as connection:
        connection.execute(delete(ga4_oauth_flows).where(ga4_oauth_flows.c.expires_at < now))
        connection.execute(
            insert(ga4_oauth_flows).values(
                state_id=state_id,
                scope_id=scope,
                code_verifier_encrypted=encrypted_verifier,
                redirect_uri=redirect_uri,
                oauth_scopes=scopes,
                actor=actor or current_actor(),
                created_at=now,
                expires_at=now + timedelta(seconds=FLOW_TTL_SECONDS),
            )
        )
    logger.info("GA4 scope %s: OAuth flow started (provisioning=%s)", scope, provisioning)
    return str(url)


def finish_oauth(
    scope_id: str | None, *, state: str, code: str, redirect_uri: str | None = None
) -> Connection:
    """Exchange the callback's ``code`` and store the refresh token as the scope's connection.

    A tampered, expired, replayed or other-scope ``state`` is a 400 and stores nothing; the flow
    is used up by the first callback that names it, whatever happens next.
    """
    scope = resolve_scope(scope_id)
    if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE_LENGTH:
        raise APIError(400, "invalid_oauth_code", "The callback has no authorization code.")
    state_id = _verify_state(state, scope)
    now = utcnow()
    with current_state().engine.begin() as connection:
        row = connection.execute(
            select(ga4_oauth_flows).where(ga4_oauth_flows.c.state_id == state_id)
        ).first()
        consumed = (
            row is not None
            and connection.execute(
                delete(ga4_oauth_flows).where(ga4_oauth_flows.c.state_id == state_id)
            ).rowcount
            == 1
        )
    if row is None or not consumed:
        raise _state_error("This sign-in was already completed or has expired: start again.")
    if row.scope_id != scope:
        raise _state_error("This sign-in was started for another scope.")
    if row.expires_at <= now:
        raise _state_error("This sign-in took too long and has expired: start again.")
    if redirect_uri is not None and redirect_uri != row.redirect_uri:
        raise _state_error("The callback URL differs from the one the sign-in started with.")
    verifier = decrypt_secret(row.code_verifier_encrypted, purpose=verifier_purpose(state_id))
    client_id, client_secret = _client()
    token = _exchange(
        client_id, client_secret, list(row.oauth_scopes), row.redirect_uri, code, verifier
    )
    refresh_token = token.get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise APIError(
            400,
            "no_refresh_token",
            "Google returned no refresh token. Remove this app's access at "
            "https://myaccount.google.com/permissions, then connect again and grant consent.",
        )
    granted = _granted_scopes(token.get("scope"), row.oauth_scopes)
    if ANALYTICS_READONLY not in granted and ANALYTICS_EDIT not in granted:
        raise APIError(
            400,
            "ga4_scope_missing",
            "Access to Google Analytics was not granted: connect again and allow it.",
        )
    saved = save_oauth_tokens(
        scope, refresh_token=refresh_token, client_id=client_id, scopes=granted, actor=row.actor
    )
    logger.info("GA4 scope %s: connected with OAuth", scope)
    return saved


def _exchange(
    client_id: str,
    client_secret: str,
    scopes: list[str],
    redirect_uri: str,
    code: str,
    verifier: str,
) -> dict[str, Any]:
    """The token endpoint's answer to the code (authorization_code grant with PKCE)."""
    flow = _flow(client_id, client_secret, scopes, redirect_uri, verifier)
    try:
        with _muted():
            timeout = float(current_state().settings["UMETRICS_GA4_TIMEOUT"])
            token = flow.fetch_token(code=code, code_verifier=verifier, timeout=timeout)
    except Warning as changed:
        # oauthlib raises (not warns) when Google grants other scopes than asked for, e.g. the
        # user unticked "edit"; the token is attached and the grant is still usable.
        token = getattr(changed, "token", None)
        if token is None:
            raise APIError(502, "oauth_exchange_failed", "Google's answer had no token.") from None
    except (OAuth2Error, RequestException) as exc:
        raise _oauth_error(exc, "UMETRICS_GA4_OAUTH_TOKEN_URI") from None
    finally:
        flow.oauth2session.close()
    return dict(token)


def _oauth_error(exc: Exception, setting: str) -> APIError:
    """An APIError for a failed OAuth call that says what went wrong but repeats no secret."""
    if isinstance(exc, InsecureTransportError):
        return APIError(409, "ga4_oauth_not_configured", f"{setting} must be an https URL.")
    if isinstance(exc, OAuth2Error):
        error = exc.error if isinstance(exc.error, str) else "error"
        return APIError(
            400,
            "oauth_exchange_failed",
            f"Google refused the sign-in ({error[:64]}): connect again.",
            {"error": error[:64]},
        )
    logger.warning("GA4: the OAuth endpoint %s could not be reached", setting)
    return APIError(502, "oauth_unavailable", "Google's sign-in service could not be reached.")


def _verify_state(state: Any, scope: str) -> str:
    """The flow id inside a genuine, fresh ``state`` signed for ``scope``."""
    if not isinstance(state, str) or not state or len(state) > 512:
        raise _state_error("The callback has no valid state.")
    try:
        payload = _serializer().loads(state, max_age=FLOW_TTL_SECONDS)
    except SignatureExpired:
        raise _state_error("This sign-in took too long and has expired: start again.") from None
    except BadSignature:
        raise _state_error("The callback's state was altered or is not ours.") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("sid"), str):
        raise _state_error("The callback's state was altered or is not ours.")
    if payload.get("scope") != scope:
        raise _state_error("This sign-in was started for another scope.")
    return str(payload["sid"])


def _state_error(message: str) -> APIError:
    return APIError(400, "invalid_oauth_state", message)


def _serializer() -> URLSafeTimedSerializer:
    secret_key = current_app.config.get("SECRET_KEY")
    if not secret_key:
        raise APIError(
            409,
            "secret_key_missing",
            "Set the Flask SECRET_KEY: it signs the OAuth state that protects the sign-in.",
        )
    return URLSafeTimedSerializer(secret_key, salt=STATE_SALT)


def _client() -> tuple[str, str]:
    """The OAuth client id (config) and secret (environment), or a 409 naming what is missing."""
    client_id = current_state().settings["UMETRICS_GA4_OAUTH_CLIENT_ID"]
    if not client_id:
        raise APIError(
            409,
            "ga4_oauth_not_configured",
            "Google sign-in is not configured: set UMETRICS_GA4_OAUTH_CLIENT_ID.",
        )
    return str(client_id), oauth_client_secret()


def _flow(
    client_id: str, client_secret: str, scopes: Sequence[str], redirect_uri: str, verifier: str
) -> Any:
    """A google-auth-oauthlib web Flow on the configured endpoints with our PKCE verifier."""
    from google_auth_oauthlib.flow import Flow

    settings = current_state().settings
    config = {
        "web": {
            "client_id": client_id,
            "client_secret": client_secret,
            "auth_uri": settings["UMETRICS_GA4_OAUTH_AUTH_URI"],
            "token_uri": settings["UMETRICS_GA4_OAUTH_TOKEN_URI"],
            "redirect_uris": [redirect_uri],
        }
    }
    return Flow.from_client_config(
        config,
        scopes=list(scopes),
        redirect_uri=redirect_uri,
        code_verifier=verifier,
        autogenerate_code_verifier=False,
    )


def _granted_scopes(answer: Any, asked: Sequence[str]) -> list[str]:
    """The scopes Google granted (its ``scope`` field, a list or a space-separated string)."""
    if isinstance(answer, str):
        return [s for s in answer.split() if s]
    if isinstance(answer, (list, tuple)):
        return [str(s) for s in answer]
    return list(asked)


@contextmanager
def _muted() -> Iterator[None]:
    reset = _exchanging.set(True)
    try:
        yield
    finally:
        _exchanging.reset(reset)


def state_scope(state: Any) -> str | None:
    """The scope a genuine, fresh ``state`` was signed for, else None.

    The callback route authorizes the caller on this scope before :func:`finish_oauth` checks
    the state again (with its flow row) and exchanges the code.
    """
    if not isinstance(state, str) or not state or len(state) > 512:
        return None
    try:
        payload = _serializer().loads(state, max_age=FLOW_TTL_SECONDS)
    except (BadSignature, APIError):
        return None
    scope = payload.get("scope") if isinstance(payload, dict) else None
    return scope if isinstance(scope, str) else None
