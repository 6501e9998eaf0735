"""GA4 credentials at rest: secrets are encrypted under rotating env keys, service-account keys
are validated without being echoed, stored credentials work with the real google-auth against a
local fake token endpoint, and disconnecting deletes everything (revoking OAuth grants)."""

from __future__ import annotations

import base64
import json
import logging
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from flask import Flask
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request
from sqlalchemy import insert, select

from flask_umetrics.db.tables import audit_log, ga4_connections, ga4_report_cache
from flask_umetrics.errors import APIError, ConfigurationError, ValidationError
from flask_umetrics.ga4 import connections as ga4
from flask_umetrics.ga4.secrets import (
    SecretUnavailableError,
    decrypt_secret,
    encrypt_secret,
    reencrypt_all,
)
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .ga4_env import use_keys
from .ga4_fake_oauth import (
    ASSERTION_AUDIENCE,
    FakeGoogleOAuth,
    FakeServiceAccount,
    make_service_account,
)

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(100, 132))
SCOPE = "site-a"
CLIENT_ID = "test-client.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-test-client-secret"
READONLY = "https://www.googleapis.com/auth/analytics.readonly"
EDIT = "https://www.googleapis.com/auth/analytics.edit"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture
def fake() -> Iterator[FakeGoogleOAuth]:
    with FakeGoogleOAuth(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def account_key() -> Any:
    """One RSA key for the module (generating one per test is slow); token_uri set per test."""
    return make_service_account("http://placeholder.invalid/token")


@pytest.fixture
def account(fake: FakeGoogleOAuth, account_key: FakeServiceAccount) -> FakeServiceAccount:
    info = dict(account_key.info, token_uri=fake.token_uri)
    fake.service_accounts[account_key.email] = account_key.public_pem
    return FakeServiceAccount(info=info, public_pem=account_key.public_pem)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    yield session
    session.close()


GA4App = Callable[..., Flask]


@pytest.fixture
def ga4_app(make_app: AppFactory, fake: FakeGoogleOAuth, monkeypatch: pytest.MonkeyPatch) -> GA4App:
    """``ga4_app()`` builds an app wired to the fake Google; env key k1 unless a test changes
    the environment (each app reads it on first use)."""
    use_keys(monkeypatch, "k1", k1=KEY_1)
    monkeypatch.setenv("UMETRICS_GA4_OAUTH_CLIENT_SECRET", CLIENT_SECRET)

    def build(**config: Any) -> Flask:
        return make_app(
            SECRET_KEY="test-secret-key",
            UMETRICS_DEFAULT_SCOPE=SCOPE,
            UMETRICS_GA4_OAUTH_CLIENT_ID=CLIENT_ID,
            UMETRICS_GA4_OAUTH_AUTH_URI=fake.auth_uri,
            UMETRICS_GA4_OAUTH_TOKEN_URI=fake.token_uri,
            UMETRICS_GA4_OAUTH_REVOKE_URI=fake.revoke_uri,
            **config,
        )

    return build


def raw_row(app: Flask, scope: str = SCOPE) -> Any:
    with app.app_context(), current_state().engine.connect() as connection:
        return connection.execute(
            select(ga4_connections).where(ga4_connections.c.scope_id == scope)
        ).first()


def audit_rows(app: Flask) -> list[Any]:
    with app.app_context(), current_state().engine.connect() as connection:
        return list(connection.execute(select(audit_log).order_by(audit_log.c.id)).all())


def secret_fragments(account: FakeServiceAccount) -> list[str]:
    """Pieces of the private key that must never show up anywhere but the encrypted column."""
    body = "".join(
        line for line in account.info["private_key"].splitlines() if not line.startswith("-----")
    )
    return ["PRIVATE KEY", body[100:140], body[-60:-20]]


# --- encryption ----------------------------------------------------------------------------------


def test_secrets_round_trip_and_are_bound_to_their_purpose(ga4_app: GA4App) -> None:
    app = ga4_app()
    with app.app_context():
        token = encrypt_secret("hello secret", purpose="ga4-credentials:site-a")
        assert token.startswith("k1.")
        assert "hello" not in token
        assert decrypt_secret(token, purpose="ga4-credentials:site-a") == "hello secret"
        assert encrypt_secret("hello secret", purpose="p") != encrypt_secret(
            "hello secret", purpose="p"
        )
        with pytest.raises(SecretUnavailableError) as caught:
            decrypt_secret(token, purpose="ga4-credentials:site-b")
        assert caught.value.status == 503
        assert "does not match or the stored value was altered" in caught.value.message
        body = token[3:]
        flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
        with pytest.raises(SecretUnavailableError):
            decrypt_secret("k1." + flipped, purpose="ga4-credentials:site-a")


def test_without_a_key_secrets_cannot_be_written_and_the_error_says_what_to_set(
    ga4_app: GA4App, monkeypatch: pytest.MonkeyPatch, account: FakeServiceAccount
) -> None:
    use_keys(monkeypatch, None)
    app = ga4_app()
    with app.app_context():
        with pytest.raises(SecretUnavailableError) as caught:
            encrypt_secret("x", purpose="p")
        assert caught.value.status == 503
        assert caught.value.code == "encryption_unavailable"
        assert "set UMETRICS_ENCRYPTION_KEY_CURRENT=<id>" in caught.value.message
        with pytest.raises(SecretUnavailableError):
            ga4.save_service_account(SCOPE, account.info)
        assert ga4.get_connection(SCOPE) is None


def test_a_malformed_key_names_the_variable_but_never_the_key(
    ga4_app: GA4App, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = b64(KEY_1[:31])
    monkeypatch.setenv("UMETRICS_ENCRYPTION_KEY_k1", value)
    app = ga4_app()
    with app.app_context(), pytest.raises(ConfigurationError) as caught:
        encrypt_secret("x", purpose="p")
    assert (
        str(caught.value) == "UMETRICS_ENCRYPTION_KEY_k1 must be base64 of 32 bytes, got 31 bytes"
    )
    assert value[:16] not in "".join(traceback.format_exception(caught.value))


# --- service accounts ----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["type", "client_email", "private_key", "token_uri"])
def test_each_missing_service_account_field_is_named(
    ga4_app: GA4App, account: FakeServiceAccount, missing: str
) -> None:
    app = ga4_app()
    info = {k: v for k, v in account.info.items() if k != missing}
    with app.app_context():
        with pytest.raises(ValidationError) as caught:
            ga4.save_service_account(SCOPE, json.dumps(info))
        assert caught.value.field == missing
        assert caught.value.message == "is missing from the service-account key"
        assert ga4.get_connection(SCOPE) is None


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"type": "authorized_user"}, "type", 'must be "service_account"'),
        ({"client_email": "not-an-email"}, "client_email", "is not an e-mail address"),
        ({"token_uri": "ftp://x/token"}, "token_uri", "must be an http(s) URL"),
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
         "private_key", "is not an unencrypted PEM private key"),
        ({"private_key": 42}, "private_key", "is missing"),
    ],
)  # fmt: skip
def test_bad_service_account_keys_are_refused_without_echoing_them(
    ga4_app: GA4App, account: FakeServiceAccount, change: dict[str, Any], field: str, message: str
) -> None:
    app = ga4_app()
    with app.app_context():
        with pytest.raises(ValidationError) as caught:
            ga4.save_service_account(SCOPE, dict(account.info, **change))
        assert caught.value.field == field
        assert caught.value.message.startswith(message)
        text = "".join(traceback.format_exception(caught.value))
        for fragment in secret_fragments(account)[1:]:
            assert fragment not in text
        with pytest.raises(ValidationError) as caught:
            ga4.save_service_account(SCOPE, "{not json")
        assert caught.value.field == "credentials"
        assert ga4.get_connection(SCOPE) is None


def test_a_service_account_is_stored_encrypted_and_shown_without_secrets(
    ga4_app: GA4App, account: FakeServiceAccount
) -> None:
    app = ga4_app()
    with app.app_context():
        connection = ga4.save_service_account(SCOPE, json.dumps(account.info), actor="user:7")
    assert connection.scope_id == SCOPE
    assert connection.auth_kind == "service_account"
    assert connection.principal == account.email
    assert connection.oauth_scopes == ()
    assert connection.property_id is None and connection.measurement_id is None
    assert connection.has_mp_secret is False
    assert connection.connected_by == "user:7"
    assert connection.can_provision is True
    row = raw_row(app)
    assert row.credentials_encrypted.startswith("k1.")
    stored = row.credentials_encrypted
    for fragment in [*secret_fragments(account), account.email, account.info["private_key_id"]]:
        assert fragment not in stored
    for fragment in [*secret_fragments(account), account.info["private_key_id"]]:
        assert fragment not in repr(connection)
    with app.app_context():
        plain = json.loads(decrypt_secret(stored, purpose="ga4-credentials:site-a"))
    assert plain == account.info
    (audit,) = audit_rows(app)
    assert (audit.action, audit.actor, audit.scope_id) == ("ga4.connect", "user:7", SCOPE)
    assert audit.target == f"service_account:{account.email}"
    assert audit.before is None
    assert audit.after == {
        "auth_kind": "service_account",
        "principal": account.email,
        "oauth_scopes": [],
    }


def test_stored_service_account_gets_a_token_through_the_jwt_bearer_grant(
    ga4_app: GA4App, account: FakeServiceAccount, fake: FakeGoogleOAuth, http: requests.Session
) -> None:
    app = ga4_app()
    with app.app_context():
        ga4.save_service_account(SCOPE, account.info)
        credentials = ga4.load_credentials(SCOPE)
        edit_credentials = ga4.load_credentials(SCOPE, edit=True)
    assert credentials.token is None
    credentials.refresh(Request(http))
    assert credentials.token == fake.access_tokens[0]
    assert [r["grant_type"] for r in fake.token_requests] == [
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    ]
    (claims,) = fake.jwt_claims
    assert claims["iss"] == account.email
    assert claims["aud"] == ASSERTION_AUDIENCE
    assert claims["scope"] == READONLY
    edit_credentials.refresh(Request(http))
    assert fake.jwt_claims[1]["scope"] == f"{READONLY} {EDIT}"


def test_a_key_google_does_not_know_is_refused_by_the_token_endpoint(
    ga4_app: GA4App, account: FakeServiceAccount, fake: FakeGoogleOAuth, http: requests.Session
) -> None:
    impostor = make_service_account(fake.token_uri, email=account.email)  # same email, new key
    app = ga4_app()
    with app.app_context():
        ga4.save_service_account(SCOPE, impostor.info)
        credentials = ga4.load_credentials(SCOPE)
    with pytest.raises(RefreshError):
        credentials.refresh(Request(http))
    assert fake.access_tokens == []


def test_rotation_old_keys_still_decrypt_and_reencrypt_all_moves_secrets(
    ga4_app: GA4App,
    account: FakeServiceAccount,
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeGoogleOAuth,
    http: requests.Session,
) -> None:
    app = ga4_app()
    with app.app_context():
        ga4.save_service_account(SCOPE, account.info)
        ga4.save_service_account("site-b", account.info)
        ga4.set_mp_secret(SCOPE, "mp-secret-abc")
    assert raw_row(app).credentials_encrypted.startswith("k1.")

    use_keys(monkeypatch, "k2", k1=KEY_1, k2=KEY_2)
    rotated = ga4_app()
    with rotated.app_context():
        assert ga4.load_credentials(SCOPE).service_account_email == account.email
        assert ga4.get_mp_secret(SCOPE) == "mp-secret-abc"
        result = reencrypt_all(actor="cli")
        assert (result.key_id, result.credentials, result.mp_secrets) == ("k2", 2, 1)
        assert result.oauth_verifiers == 0
        assert reencrypt_all().total == 0  # nothing left under k1
    row = raw_row(rotated)
    assert row.credentials_encrypted.startswith("k2.")
    assert row.mp_secret_encrypted.startswith("k2.")
    assert raw_row(rotated, "site-b").credentials_encrypted.startswith("k2.")
    reencrypt_audits = [a for a in audit_rows(rotated) if a.action == "ga4.reencrypt"]
    assert [(a.scope_id, a.after, a.actor) for a in reencrypt_audits] == [
        ("site-a", {"key_id": "k2", "secrets": 2}, "cli"),
        ("site-b", {"key_id": "k2", "secrets": 1}, "cli"),
    ]

    use_keys(monkeypatch, "k2", k2=KEY_2)  # k1 retired
    retired = ga4_app()
    with retired.app_context():
        credentials = ga4.load_credentials(SCOPE)
    credentials.refresh(Request(http))
    assert credentials.token == fake.access_tokens[-1]

    use_keys(monkeypatch, "k1", k1=KEY_1)  # the new key is missing: a clear error
    lost = ga4_app()
    with lost.app_context(), pytest.raises(SecretUnavailableError) as caught:
        ga4.load_credentials(SCOPE)
    assert "written under key id 'k2': set UMETRICS_ENCRYPTION_KEY_k2" in caught.value.message
    assert b64(KEY_1)[:12] not in caught.value.message


# --- property link and Measurement Protocol secret ------------------------------------------------


def test_linking_a_property_and_storing_the_mp_secret(
    ga4_app: GA4App, account: FakeServiceAccount
) -> None:
    app = ga4_app()
    with app.app_context():
        with pytest.raises(APIError) as caught:
            ga4.set_property(SCOPE, "123")
        assert (caught.value.status, caught.value.code) == (409, "ga4_not_connected")
        ga4.save_service_account(SCOPE, account.info)
        linked = ga4.set_property(
            SCOPE,
            "properties/123456",
            account_id="accounts/99",
            property_name="Demo site",
            stream_id="properties/123456/dataStreams/777",
            measurement_id="G-ABC123XYZ",
            actor="user:1",
        )
        assert (linked.property_id, linked.account_id, linked.stream_id) == ("123456", "99", "777")
        assert (linked.property_name, linked.measurement_id) == ("Demo site", "G-ABC123XYZ")
        with pytest.raises(ValidationError) as bad:
            ga4.set_property(SCOPE, "123", measurement_id="UA-1")
        assert bad.value.field == "measurement_id"
        with pytest.raises(ValidationError) as bad:
            ga4.set_property(SCOPE, "abc")
        assert bad.value.field == "property_id"

        assert ga4.get_mp_secret(SCOPE) is None
        ga4.set_mp_secret(SCOPE, "mp-Secret-42")
        assert ga4.get_mp_secret(SCOPE) == "mp-Secret-42"
        assert ga4.require_connection(SCOPE).has_mp_secret is True
    assert "mp-Secret-42" not in raw_row(app).mp_secret_encrypted

    with app.app_context():
        same = ga4.set_property(SCOPE, "123456")  # relinking keeps stream and secret
        assert (same.stream_id, same.measurement_id, same.has_mp_secret) == (
            "777",
            "G-ABC123XYZ",
            True,
        )
        with current_state().engine.begin() as connection:
            connection.execute(
                insert(ga4_report_cache).values(
                    scope_id=SCOPE,
                    report="traffic",
                    params_hash="h",
                    params={},
                    result={},
                    fetched_at=datetime(2024, 1, 1, tzinfo=timezone.utc),
                    expires_at=datetime(2024, 1, 2, tzinfo=timezone.utc),
                )
            )
        other = ga4.set_property(SCOPE, "555")  # another property: stream, secret, cache go
        assert (other.property_id, other.stream_id, other.measurement_id) == ("555", None, None)
        assert other.has_mp_secret is False
        assert ga4.get_mp_secret(SCOPE) is None
        with current_state().engine.connect() as connection:
            assert connection.execute(select(ga4_report_cache)).all() == []
    actions = [(a.action, a.target) for a in audit_rows(app)]
    assert actions == [
        ("ga4.connect", f"service_account:{account.email}"),
        ("ga4.link_property", "properties/123456"),
        ("ga4.mp_secret", "ga4"),
        ("ga4.link_property", "properties/123456"),
        ("ga4.link_property", "properties/555"),
    ]
    for row in audit_rows(app):
        assert "mp-Secret-42" not in json.dumps([row.before, row.after])


# --- OAuth grants and disconnecting ---------------------------------------------------------------


def test_stored_oauth_grant_refreshes_with_the_client_secret_from_the_environment(
    ga4_app: GA4App, fake: FakeGoogleOAuth, http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.refresh_tokens["1//granted-refresh-token"] = READONLY
    app = ga4_app()
    with app.app_context():
        connection = ga4.save_oauth_tokens(
            SCOPE, refresh_token="1//granted-refresh-token", client_id=CLIENT_ID, scopes=[READONLY]
        )
        assert (connection.auth_kind, connection.oauth_scopes) == ("oauth", (READONLY,))
        assert connection.can_provision is False
        credentials = ga4.load_credentials(SCOPE)
        with pytest.raises(APIError) as caught:
            ga4.load_credentials(SCOPE, edit=True)
        assert (caught.value.status, caught.value.code) == (409, "ga4_scope_missing")
    assert "granted-refresh-token" not in raw_row(app).credentials_encrypted
    credentials.refresh(Request(http))
    assert credentials.token == fake.access_tokens[0]
    (request,) = fake.token_requests
    assert request["grant_type"] == "refresh_token"
    assert (request["client_id"], request["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)

    monkeypatch.delenv("UMETRICS_GA4_OAUTH_CLIENT_SECRET")
    with app.app_context(), pytest.raises(APIError) as caught:
        ga4.load_credentials(SCOPE)
    assert (caught.value.status, caught.value.code) == (409, "ga4_oauth_not_configured")
    assert "UMETRICS_GA4_OAUTH_CLIENT_SECRET" in caught.value.message


def test_disconnect_revokes_the_grant_and_deletes_row_cache_and_flows(
    ga4_app: GA4App, fake: FakeGoogleOAuth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.refresh_tokens["1//to-be-revoked"] = READONLY
    app = ga4_app()
    with app.app_context():
        ga4.save_oauth_tokens(
            SCOPE, refresh_token="1//to-be-revoked", client_id=CLIENT_ID, scopes=[READONLY]
        )
        ga4.set_property(SCOPE, "42")
        with current_state().engine.begin() as connection:
            connection.execute(
                insert(ga4_report_cache).values(
                    scope_id=SCOPE,
                    report="traffic",
                    params_hash="h",
                    params={},
                    result={},
                    fetched_at=datetime(2024, 1, 1, tzinfo=timezone.utc),
                    expires_at=datetime(2024, 1, 2, tzinfo=timezone.utc),
                )
            )
        assert ga4.disconnect(SCOPE, actor="user:3") is True
        assert ga4.get_connection(SCOPE) is None
        assert ga4.disconnect(SCOPE) is False
        with current_state().engine.connect() as connection:
            assert connection.execute(select(ga4_report_cache)).all() == []
    assert fake.revoked == ["1//to-be-revoked"]
    assert "1//to-be-revoked" not in fake.refresh_tokens
    last = audit_rows(app)[-1]
    assert (last.action, last.actor) == ("ga4.disconnect", "user:3")
    assert last.before == {
        "auth_kind": "oauth",
        "principal": None,
        "account_id": None,
        "property_id": "42",
        "property_name": None,
        "stream_id": None,
        "measurement_id": None,
    }
    assert last.after == {"revoked": True}
    assert "to-be-revoked" not in caplog.text


def test_disconnect_deletes_even_when_revocation_fails_and_logs_no_token(
    ga4_app: GA4App, fake: FakeGoogleOAuth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.revoke_status = 503
    app = ga4_app()
    with app.app_context():
        ga4.save_oauth_tokens(
            SCOPE, refresh_token="1//unrevokable", client_id=CLIENT_ID, scopes=[READONLY]
        )
        assert ga4.disconnect(SCOPE) is True
        assert ga4.get_connection(SCOPE) is None
    assert fake.revoked == ["1//unrevokable"]
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "flask_umetrics.ga4.connections"
    ]
    assert warnings == [f"GA4: revoking the OAuth grant at {fake.revoke_uri} failed: HTTP 503"]
    assert "unrevokable" not in caplog.text


def test_replacing_an_oauth_grant_revokes_the_old_one(
    ga4_app: GA4App, fake: FakeGoogleOAuth, account: FakeServiceAccount
) -> None:
    fake.refresh_tokens["1//old"] = READONLY
    app = ga4_app()
    with app.app_context():
        ga4.save_oauth_tokens(SCOPE, refresh_token="1//old", client_id=CLIENT_ID, scopes=[READONLY])
        ga4.save_oauth_tokens(SCOPE, refresh_token="1//old", client_id=CLIENT_ID, scopes=[READONLY])
        assert fake.revoked == []  # the same grant again: nothing to revoke
        ga4.save_service_account(SCOPE, account.info)
        assert ga4.require_connection(SCOPE).auth_kind == "service_account"
    assert fake.revoked == ["1//old"]
    befores = [a.before for a in audit_rows(app) if a.action == "ga4.connect"]
    assert befores == [
        None,
        {"auth_kind": "oauth", "principal": None},
        {"auth_kind": "oauth", "principal": None},
    ]
