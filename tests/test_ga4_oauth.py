"""The GA4 OAuth web flow end to end with the real google-auth-oauthlib against a local fake
Google: PKCE with a server-side verifier, a signed state that refuses tampering, other scopes,
replays and expiry, and a refresh token that is stored encrypted and never logged or returned."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from google.auth.transport.requests import Request
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select, update

from flask_umetrics.db.tables import audit_log, ga4_connections, ga4_oauth_flows
from flask_umetrics.db.types import utcnow
from flask_umetrics.errors import APIError
from flask_umetrics.ga4 import connections as ga4
from flask_umetrics.ga4.oauth import finish_oauth, start_oauth
from flask_umetrics.ga4.secrets import decrypt_secret, encrypt_secret
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .ga4_env import use_keys, use_oauth_client
from .ga4_fake_oauth import FakeGoogleOAuth

KEY_1 = bytes(range(32))
SCOPE = "site-a"
CLIENT_ID = "test-client.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-test-client-secret"
REDIRECT = "http://app.example/umetrics/api/ga4/oauth/callback"
READONLY = "https://www.googleapis.com/auth/analytics.readonly"
EDIT = "https://www.googleapis.com/auth/analytics.edit"

GA4App = Callable[..., Flask]


@pytest.fixture
def fake() -> Iterator[FakeGoogleOAuth]:
    with FakeGoogleOAuth(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as server:
        yield server


@pytest.fixture
def ga4_app(make_app: AppFactory, fake: FakeGoogleOAuth, monkeypatch: pytest.MonkeyPatch) -> GA4App:
    use_keys(monkeypatch, "k1", k1=KEY_1)
    use_oauth_client(monkeypatch, CLIENT_SECRET)

    def build(**config: Any) -> Flask:
        settings: dict[str, Any] = {
            "SECRET_KEY": "test-secret-key",
            "UMETRICS_DEFAULT_SCOPE": SCOPE,
            "UMETRICS_GA4_OAUTH_CLIENT_ID": CLIENT_ID,
            "UMETRICS_GA4_OAUTH_AUTH_URI": fake.auth_uri,
            "UMETRICS_GA4_OAUTH_TOKEN_URI": fake.token_uri,
            "UMETRICS_GA4_OAUTH_REVOKE_URI": fake.revoke_uri,
        }
        settings.update(config)
        return make_app(**settings)

    return build


@pytest.fixture
def app(ga4_app: GA4App) -> Flask:
    return ga4_app()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    yield session
    session.close()


def start(app: Flask, scope: str = SCOPE, **kwargs: Any) -> str:
    with app.app_context():
        return start_oauth(scope, redirect_uri=REDIRECT, actor="user:5", **kwargs)


def finish(app: Flask, callback: dict[str, str], scope: str = SCOPE) -> ga4.Connection:
    """The app's callback route: ``callback`` is the query Google redirected the browser with."""
    with app.app_context():
        return finish_oauth(scope, state=callback["state"], code=callback["code"])


def refused(app: Flask, callback: dict[str, str], scope: str = SCOPE) -> APIError:
    with pytest.raises(APIError) as caught:
        finish(app, callback, scope)
    return caught.value


def flows(app: Flask) -> list[Any]:
    with app.app_context(), current_state().engine.connect() as connection:
        return list(connection.execute(select(ga4_oauth_flows)).all())


def stored(app: Flask) -> list[Any]:
    with app.app_context(), current_state().engine.connect() as connection:
        return list(connection.execute(select(ga4_connections)).all())


def challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def flip_one_char(token: str) -> str:
    index = len(token) // 3
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1 :]


def test_oauth_flow_end_to_end_stores_the_refresh_token_encrypted_and_never_logs_it(
    app: Flask,
    fake: FakeGoogleOAuth,
    caplog: pytest.LogCaptureFixture,
    http: requests.Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 and google included
    # Another test or library in the same run may have given urllib3's logger a level of its own
    # or switched it off (logging.config's disable_existing_loggers); this test needs its debug
    # lines to see what would be logged.
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    monkeypatch.setattr(logging.getLogger("urllib3.connectionpool"), "disabled", False)
    url = start(app)

    parts = urllib.parse.urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == fake.auth_uri
    query = dict(urllib.parse.parse_qsl(parts.query))
    state = query.pop("state")
    code_challenge = query.pop("code_challenge")
    assert query == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": READONLY,
        "access_type": "offline",
        "prompt": "consent",
        "code_challenge_method": "S256",
    }
    (flow,) = flows(app)
    assert (flow.scope_id, flow.redirect_uri, flow.actor) == (SCOPE, REDIRECT, "user:5")
    assert flow.oauth_scopes == [READONLY]
    assert flow.expires_at - flow.created_at == timedelta(minutes=10)
    assert flow.code_verifier_encrypted.startswith("k1.")
    with app.app_context():
        verifier = decrypt_secret(
            flow.code_verifier_encrypted, purpose=f"ga4-oauth-verifier:{flow.state_id}"
        )
    assert len(verifier) == 96
    assert challenge(verifier) == code_challenge
    assert verifier not in url

    callback = fake.consent(url)
    assert callback["state"] == state
    connection = finish(app, callback)

    assert connection.auth_kind == "oauth"
    assert connection.oauth_scopes == (READONLY,)
    assert connection.connected_by == "user:5"
    assert connection.can_provision is False
    ((refresh_token, _),) = fake.refresh_tokens.items()
    (exchange,) = fake.token_requests
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["code_verifier"] == verifier
    assert flows(app) == []  # the flow is used up
    (row,) = stored(app)
    assert refresh_token not in row.credentials_encrypted
    assert row.credentials_encrypted.startswith("k1.")
    with app.app_context():
        plain = json.loads(
            decrypt_secret(row.credentials_encrypted, purpose="ga4-credentials:site-a")
        )
    assert plain == {"client_id": CLIENT_ID, "refresh_token": refresh_token}

    # The stored grant works with the real google-auth refresh.
    with app.app_context():
        credentials = ga4.load_credentials(SCOPE)
    credentials.refresh(Request(http))
    assert credentials.token == fake.access_tokens[-1]
    assert [r["grant_type"] for r in fake.token_requests] == [
        "authorization_code",
        "refresh_token",
    ]

    secrets_seen = [refresh_token, callback["code"], verifier, *fake.access_tokens, CLIENT_SECRET]
    assert any("POST /token" in r.getMessage() for r in caplog.records)  # the capture works
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        for secret in secrets_seen:
            assert secret not in text, (record.name, record.levelname)
    for secret in secrets_seen:
        assert secret not in repr(connection)
        assert secret not in json.dumps(ga4_connection_json(connection))
    with app.app_context(), current_state().engine.connect() as db:
        audits = db.execute(select(audit_log.c.before, audit_log.c.after)).all()
    assert [a.after for a in audits] == [
        {"auth_kind": "oauth", "principal": None, "oauth_scopes": [READONLY]}
    ]


def ga4_connection_json(connection: ga4.Connection) -> Any:
    """What a route would answer (the REST layer dumps dataclasses with pydantic)."""
    import pydantic

    return pydantic.TypeAdapter(ga4.Connection).dump_python(connection, mode="json")


def test_provisioning_asks_for_edit_and_the_grant_can_provision(
    app: Flask, fake: FakeGoogleOAuth
) -> None:
    url = start(app, provisioning=True)
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["scope"] == (
        f"{READONLY} {EDIT}"
    )
    connection = finish(app, fake.consent(url))
    assert connection.oauth_scopes == (READONLY, EDIT)
    assert connection.can_provision is True
    with app.app_context():
        assert ga4.load_credentials(SCOPE, edit=True).scopes == [READONLY, EDIT]


def test_a_tampered_state_is_refused_and_nothing_is_stored(
    app: Flask, fake: FakeGoogleOAuth
) -> None:
    callback = fake.consent(start(app))
    error = refused(app, {"state": flip_one_char(callback["state"]), "code": callback["code"]})
    assert (error.status, error.code) == (400, "invalid_oauth_state")
    assert error.message == "The callback's state was altered or is not ours."
    error = refused(app, {"state": "", "code": callback["code"]})
    assert error.code == "invalid_oauth_state"
    other_key = URLSafeTimedSerializer("another-secret", salt="umetrics-ga4-oauth")
    forged = other_key.dumps({"sid": flows(app)[0].state_id, "scope": SCOPE})
    assert refused(app, {"state": forged, "code": callback["code"]}).code == "invalid_oauth_state"
    assert stored(app) == []
    assert fake.token_requests == []
    assert len(flows(app)) == 1  # the genuine callback still works
    assert finish(app, callback).auth_kind == "oauth"


def test_a_state_signed_for_another_scope_is_refused(app: Flask, fake: FakeGoogleOAuth) -> None:
    callback = fake.consent(start(app, scope="site-b"))
    error = refused(app, callback, SCOPE)
    assert (error.status, error.code) == (400, "invalid_oauth_state")
    assert error.message == "This sign-in was started for another scope."
    assert stored(app) == []
    assert fake.token_requests == []


def test_a_replayed_state_is_refused(app: Flask, fake: FakeGoogleOAuth) -> None:
    callback = fake.consent(start(app))
    first = finish(app, callback)
    (row,) = stored(app)
    error = refused(app, callback)
    assert (error.status, error.code) == (400, "invalid_oauth_state")
    assert error.message == "This sign-in was already completed or has expired: start again."
    assert len(fake.token_requests) == 1
    assert stored(app) == [row]
    assert first.connected_at == row.connected_at


def test_an_expired_flow_is_refused(app: Flask, fake: FakeGoogleOAuth) -> None:
    callback = fake.consent(start(app))
    with app.app_context(), current_state().engine.begin() as connection:
        connection.execute(
            update(ga4_oauth_flows).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    error = refused(app, callback)
    assert (error.status, error.code) == (400, "invalid_oauth_state")
    assert error.message == "This sign-in took too long and has expired: start again."
    assert stored(app) == [] and flows(app) == []
    assert fake.token_requests == []


def test_a_state_signed_more_than_ten_minutes_ago_is_refused(
    app: Flask, fake: FakeGoogleOAuth
) -> None:
    callback = fake.consent(start(app))

    class ElevenMinutesAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 660

    old = URLSafeTimedSerializer(
        "test-secret-key", salt="umetrics-ga4-oauth", signer=ElevenMinutesAgo
    ).dumps({"sid": flows(app)[0].state_id, "scope": SCOPE})
    error = refused(app, {"state": old, "code": callback["code"]})
    assert error.message == "This sign-in took too long and has expired: start again."
    assert stored(app) == [] and fake.token_requests == []


def test_a_wrong_code_verifier_is_refused_by_google_and_nothing_is_stored(
    app: Flask, fake: FakeGoogleOAuth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    callback = fake.consent(start(app))
    (flow,) = flows(app)
    with app.app_context(), current_state().engine.begin() as connection:
        wrong = encrypt_secret("x" * 64, purpose=f"ga4-oauth-verifier:{flow.state_id}")
        connection.execute(update(ga4_oauth_flows).values(code_verifier_encrypted=wrong))
    error = refused(app, callback)
    assert (error.status, error.code) == (400, "oauth_exchange_failed")
    assert error.details == {"error": "invalid_grant"}
    assert stored(app) == []
    assert callback["code"] not in caplog.text


def test_no_refresh_token_in_the_answer_asks_for_consent_again(
    app: Flask, fake: FakeGoogleOAuth
) -> None:
    fake.omit_refresh_token = True
    error = refused(app, fake.consent(start(app)))
    assert (error.status, error.code) == (400, "no_refresh_token")
    assert "grant consent" in error.message
    assert stored(app) == []


def test_missing_configuration_gives_clear_errors(
    ga4_app: GA4App, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_secret_key = ga4_app(SECRET_KEY=None)
    with pytest.raises(APIError) as caught:
        start(no_secret_key)
    assert (caught.value.status, caught.value.code) == (409, "secret_key_missing")

    no_client = ga4_app(UMETRICS_GA4_OAUTH_CLIENT_ID=None)
    with pytest.raises(APIError) as caught:
        start(no_client)
    assert caught.value.message == (
        "Google sign-in is not configured: set UMETRICS_GA4_OAUTH_CLIENT_ID."
    )

    app = ga4_app()
    with app.app_context(), pytest.raises(APIError) as caught:
        start_oauth(SCOPE, redirect_uri="/relative/callback")
    assert (caught.value.status, caught.value.code) == (400, "invalid_redirect_uri")

    monkeypatch.delenv("UMETRICS_GA4_OAUTH_CLIENT_SECRET")
    with pytest.raises(APIError) as caught:
        start(app)
    assert (caught.value.status, caught.value.code) == (409, "ga4_oauth_not_configured")
    assert "UMETRICS_GA4_OAUTH_CLIENT_SECRET" in caught.value.message

    monkeypatch.setenv("UMETRICS_GA4_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT")
    with pytest.raises(APIError) as caught:
        start(app)
    assert caught.value.message == "UMETRICS_GA4_OAUTH_AUTH_URI must be an https URL."
    assert flows(app) == []


def test_disconnect_after_oauth_revokes_the_refresh_token(
    app: Flask, fake: FakeGoogleOAuth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    finish(app, fake.consent(start(app)))
    ((refresh_token, _),) = fake.refresh_tokens.items()
    with app.app_context():
        assert ga4.disconnect(SCOPE) is True
        assert ga4.get_connection(SCOPE) is None
    assert fake.revoked == [refresh_token]
    assert fake.refresh_tokens == {}
    assert stored(app) == []
    assert refresh_token not in caplog.text


def test_a_partial_grant_stores_only_what_was_granted(app: Flask, fake: FakeGoogleOAuth) -> None:
    """Google's granular consent lets the user untick scopes: unticking "edit" leaves a
    read-only connection; unticking Analytics altogether stores nothing and says so."""
    fake.granted_scopes = {READONLY}
    connection = finish(app, fake.consent(start(app, provisioning=True)))
    assert connection.oauth_scopes == (READONLY,)
    assert connection.can_provision is False
    with app.app_context(), pytest.raises(APIError) as needs_edit:
        ga4.load_credentials(SCOPE, edit=True)
    assert (needs_edit.value.status, needs_edit.value.code) == (409, "ga4_scope_missing")
    assert "connect again with provisioning enabled" in needs_edit.value.message

    fake.granted_scopes = {"openid"}
    error = refused(app, fake.consent(start(app, scope="site-b")), "site-b")
    assert (error.status, error.code) == (400, "ga4_scope_missing")
    assert (
        error.message == "Access to Google Analytics was not granted: connect again and allow it."
    )
    assert [row.scope_id for row in stored(app)] == [SCOPE]
