"""Secrets never reach the logs: API keys, encryption and cookie keys, service-account keys.

Every logger is captured at DEBUG while the secrets are created, used, refused and revoked
(GA4 OAuth tokens and the client secret: tests/test_ga4_oauth.py).
"""

from __future__ import annotations

import base64
import json
import logging

import pytest
from flask import Flask

from flask_umetrics import UMetrics, create_api_key, revoke_api_key
from flask_umetrics.ga4.secrets import decrypt_secret, encrypt_secret

from .conftest import AppFactory
from .ga4_fake_oauth import make_service_account

API = "/umetrics/api"
ENCRYPTION_KEY = base64.b64encode(bytes(range(32))).decode()
COOKIE_KEY = base64.b64encode(bytes(range(50, 82))).decode()


@pytest.fixture
def app(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setenv("UMETRICS_ENCRYPTION_KEY_k1", ENCRYPTION_KEY)
    monkeypatch.setenv("UMETRICS_ENCRYPTION_KEY_CURRENT", "k1")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_c1", COOKIE_KEY)
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "c1")
    extension = UMetrics()
    extension.subject_loader(lambda: (None, {}))
    return make_app(extension, SECRET_KEY="test-secret-key", UMETRICS_DEFAULT_SCOPE="site-a")


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record, message and arguments and traceback."""
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_text:
            parts.append(record.exc_text)
    return "\n".join(parts)


def test_api_keys_are_never_logged(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with app.app_context():
        admin = create_api_key("site-a", "metrics.manage", name="admin")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {admin}"}
    created = client.post(f"{API}/keys", json={"permission": "ingest"}, headers=headers)
    assert created.status_code == 201
    ingest_key = created.json["key"]
    stored = client.post(
        f"{API}/events",
        json={"events": [{"event": "e", "distinct_id": "d"}]},
        headers={"X-UMetrics-Key": ingest_key},
    )
    assert stored.json["accepted"] == 1
    forged = admin[:-4] + ("AAAA" if not admin.endswith("AAAA") else "BBBB")
    refused = client.get(f"{API}/stats", headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401
    assert forged not in refused.get_data(as_text=True)
    with app.app_context():
        assert revoke_api_key(admin.split("_")[1]) is True
    assert client.get(f"{API}/stats", headers=headers).status_code == 401
    assert client.get(f"{API}/stats").status_code == 401  # logs a warning: no authorizer
    text = logged(caplog)
    assert "no @umetrics.authorizer" in text  # the capture works
    for key in (admin, ingest_key, forged):
        assert key not in text
        assert key.split("_", 2)[2] not in text  # nor the secret part alone


def test_encryption_keys_and_service_account_keys_are_never_logged(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = make_service_account("http://127.0.0.1:9/token")
    private_body = "".join(
        line for line in account.info["private_key"].splitlines() if not line.startswith("-----")
    )
    with app.app_context():
        admin = create_api_key("site-a", "metrics.manage")
        token = encrypt_secret("hello", purpose="test")
        assert decrypt_secret(token, purpose="test") == "hello"
    client = app.test_client()
    headers = {"Authorization": f"Bearer {admin}"}
    connected = client.post(
        f"{API}/ga4/connect", json={"service_account": account.info}, headers=headers
    )
    assert connected.status_code == 201, connected.json
    broken = dict(account.info, private_key=account.info["private_key"][:-80])
    refused = client.post(f"{API}/ga4/connect", json={"service_account": broken}, headers=headers)
    assert refused.status_code == 400
    for answer in (connected, refused):
        assert private_body[100:140] not in answer.get_data(as_text=True)
    text = logged(caplog)
    for secret in (ENCRYPTION_KEY, private_body[100:140], private_body[-60:-20], "PRIVATE KEY"):
        assert secret not in text
    assert json.dumps(account.info) not in text


def test_cookie_keys_are_never_logged(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with app.app_context():
        admin = create_api_key("site-a", "metrics.manage")
    client = app.test_client()
    created = client.post(
        f"{API}/experiments",
        json={"key": "banner", "name": "Banner", "kind": "flag"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert created.status_code == 201
    assert client.post(f"{API}/consent", json={"consent": True}).status_code == 200
    flags = client.get(f"{API}/flags", query_string={"keys": "banner"})
    assert flags.status_code == 200
    assert client.get_cookie("umetrics_consent") is not None
    client.set_cookie("umetrics_consent", "c1.tampered-token")  # refused; logged without keys
    assert client.get(f"{API}/flags", query_string={"keys": "banner"}).status_code == 200
    text = logged(caplog)
    assert COOKIE_KEY not in text and ENCRYPTION_KEY not in text
    assert base64.b64decode(COOKIE_KEY).hex() not in text


def test_open_metrics_url_keys_are_never_logged(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """open-metrics' key may come as ``?key=``: used, forged, or the wrong kind (a manage key
    is refused there), it reaches no log. werkzeug's request log, which prints query strings,
    is covered by tests/test_compat_openmetrics_replay.py against a real server."""
    caplog.set_level(logging.DEBUG)
    app = make_app(UMETRICS_ENABLE_OPENMETRICS_API=True)
    with app.app_context():
        public = create_api_key("default", "openmetrics")
        admin = create_api_key("default", "metrics.manage")
    client = app.test_client()
    q = json.dumps({"sessionId": "v", "events": [{"name": "e"}]})
    forged = public[:-4] + ("AAAA" if not public.endswith("AAAA") else "BBBB")
    answers = [
        client.get("/umetrics/v1/events", query_string={"key": key, "q": q}).status_code
        for key in (public, forged, admin)
    ]
    assert answers == [200, 401, 403]
    logging.getLogger("werkzeug").info('"GET /umetrics/v1/ping?key=%s HTTP/1.1" 200 -', public)
    text = logged(caplog)
    assert "key=REDACTED" in text  # werkzeug's logger carries the filter
    for key in (public, forged, admin):
        assert key not in text and key.split("_", 2)[2] not in text
