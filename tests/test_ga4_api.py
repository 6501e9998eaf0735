"""GA4 over REST, end to end with the real Google clients: the OAuth flow through the API's own
callback, accounts, provisioning twice, reports (with a quota error), a sync into the stat store,
and disconnect. Google is two local fakes: the OAuth endpoints and the GA4 gRPC services."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from flask_umetrics import create_api_key, get_stat_series
from flask_umetrics.db.tables import ga4_connections

from .conftest import AppFactory
from .ga4_env import fake_google, fake_google_config, use_keys, use_oauth_client
from .ga4_fake_oauth import FakeGoogleOAuth
from .ga4_fake_server import FakeGA4

CLIENT_ID = "test-client.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-rest-test-secret"
BASE = "/umetrics/api/ga4"


@pytest.fixture
def google() -> Iterator[tuple[FakeGoogleOAuth, FakeGA4]]:
    with fake_google(CLIENT_ID, CLIENT_SECRET) as servers:
        yield servers


@pytest.fixture
def app(
    make_app: AppFactory,
    google: tuple[FakeGoogleOAuth, FakeGA4],
    monkeypatch: pytest.MonkeyPatch,
) -> Flask:
    oauth, ga4 = google
    use_keys(monkeypatch, "k1", k1=b"e" * 32)
    use_oauth_client(monkeypatch, CLIENT_SECRET)
    return make_app(
        SECRET_KEY="rest-test-secret-key",
        UMETRICS_GA4_SYNC_DAYS=3,
        **fake_google_config(oauth, ga4, CLIENT_ID),
    )


def keys(app: Flask) -> tuple[dict[str, str], dict[str, str]]:
    with app.app_context():
        manage = create_api_key("default", "metrics.manage")
        view = create_api_key("default", "metrics.view")
    return {"Authorization": f"Bearer {manage}"}, {"Authorization": f"Bearer {view}"}


def connect_with_oauth(app: Flask, oauth: FakeGoogleOAuth, manage: dict[str, str]) -> Any:
    client = app.test_client()
    started = client.post(f"{BASE}/oauth/start", json={"provisioning": True}, headers=manage)
    assert started.status_code == 200, started.json
    callback = oauth.consent(started.json["authorization_url"])
    return client.get(f"{BASE}/oauth/callback", query_string=callback, headers=manage)


def test_connect_provision_report_sync_and_disconnect(
    app: Flask,
    google: tuple[FakeGoogleOAuth, FakeGA4],
    caplog: pytest.LogCaptureFixture,
) -> None:
    oauth, ga4 = google
    manage, view = keys(app)
    client = app.test_client()
    caplog.set_level(logging.DEBUG)

    assert client.get(f"{BASE}/status", headers=view).json["connected"] is False
    connected = connect_with_oauth(app, oauth, manage)
    assert connected.status_code == 200, connected.json
    connection = connected.json["connection"]
    assert connection["auth_kind"] == "oauth" and connection["can_provision"] is True

    accounts = client.get(f"{BASE}/accounts", headers=manage)
    assert accounts.json == {
        "accounts": [{"account_id": "100", "display_name": "Acme", "properties": []}]
    }

    body = {
        "account_id": "100",
        "display_name": "Acme web",
        "site_url": "https://acme.example/",
        "time_zone": "Europe/Berlin",
        "currency": "EUR",
    }
    first = client.post(f"{BASE}/provision", json=body, headers=manage)
    assert first.status_code == 200, first.json
    created = first.json["provisioned"]
    assert (
        created["property_created"],
        created["stream_created"],
        created["mp_secret_created"],
    ) == (
        True,
        True,
        True,
    )
    creates_before = [c.method for c in ga4.calls if "Create" in c.method]
    second = client.post(f"{BASE}/provision", json=body, headers=manage).json["provisioned"]
    assert [c.method for c in ga4.calls if "Create" in c.method] == creates_before
    assert (second["property_created"], second["stream_created"], second["mp_secret_created"]) == (
        False,
        False,
        False,
    )
    assert second["property_id"] == created["property_id"]
    assert second["measurement_id"] == created["measurement_id"]
    status = client.get(f"{BASE}/status", headers=view).json
    assert status["connection"]["property_id"] == created["property_id"]
    assert status["connection"]["has_mp_secret"] is True

    traffic = client.get(
        f"{BASE}/reports/traffic",
        query_string={"date_from": "2024-03-01", "date_to": "2024-03-02"},
        headers=view,
    )
    assert traffic.status_code == 200, traffic.json
    assert [(r["date"], r["sessions"]) for r in traffic.json["rows"]] == [
        ("2024-03-01", 10),
        ("2024-03-02", 20),
    ]
    assert traffic.json["stale"] is False
    ga4.fail_next_data_calls(1)
    stale = client.get(
        f"{BASE}/reports/traffic",
        query_string={"date_from": "2024-03-01", "date_to": "2024-03-02"},
        headers=view,
    )
    assert stale.status_code == 200
    assert stale.json["stale"] is True and stale.json["rows"] == traffic.json["rows"]
    ga4.fail_next_data_calls(1)
    nothing_cached = client.get(
        f"{BASE}/reports/seo", query_string={"date_from": "2024-03-01"}, headers=view
    )
    assert nothing_cached.status_code == 429
    assert nothing_cached.json["error"]["code"] == "ga4_quota"
    assert nothing_cached.headers["Retry-After"] == "30"
    funnel = client.get(
        f"{BASE}/reports/funnel",
        query_string=[("steps", "page_view"), ("steps", "sign_up"), ("date_from", "2024-03-01")],
        headers=view,
    )
    assert funnel.status_code == 200, funnel.json
    bad = client.get(f"{BASE}/reports/nope", headers=view)
    assert bad.status_code == 400 and bad.json["error"]["details"][0]["field"] == "report"

    synced = client.post(f"{BASE}/sync", json={}, headers=manage)
    assert synced.status_code == 200, synced.json
    assert synced.json["readings"] == 15 and synced.json["error"] is None
    with app.app_context():
        series = get_stat_series("ga4.sessions", scope_id="default")
    # Days are the property's (Europe/Berlin), stamped at their midnight there.
    berlin = ZoneInfo("Europe/Berlin")
    today = dt.datetime.now(berlin).date()
    days = [today - dt.timedelta(days=n) for n in (3, 2, 1)]
    assert all(r.captured_at.astimezone(berlin).time() == dt.time(0) for r in series)
    assert [(r.captured_at.astimezone(berlin).date(), r.value, r.source) for r in series] == [
        (days[0], 10.0, "ga4"),
        (days[1], 20.0, "ga4"),
        (days[2], 30.0, "ga4"),
    ]
    client.post(f"{BASE}/sync", json={}, headers=manage)  # re-reading replaces, never duplicates
    with app.app_context():
        assert len(get_stat_series("ga4.sessions", scope_id="default")) == 3

    refresh_tokens = list(oauth.refresh_tokens)
    assert refresh_tokens
    disconnected = client.delete(f"{BASE}", headers=manage)
    assert disconnected.json == {"disconnected": True}
    assert oauth.revoked == refresh_tokens[:1]
    with app.app_context():
        engine = app.extensions["umetrics"].engine
        with engine.connect() as db:
            assert db.execute(ga4_connections.select()).all() == []

    everything = json.dumps([connected.json, status, first.json]) + caplog.text
    for secret in [*refresh_tokens, *oauth.access_tokens, CLIENT_SECRET]:
        assert secret not in everything


def test_callback_refuses_a_tampered_state_and_anonymous_callers(
    app: Flask, google: tuple[FakeGoogleOAuth, FakeGA4]
) -> None:
    oauth, _ = google
    manage, view = keys(app)
    client = app.test_client()
    started = client.post(f"{BASE}/oauth/start", json={}, headers=manage).json
    callback = oauth.consent(started["authorization_url"])
    anonymous = client.get(f"{BASE}/oauth/callback", query_string=callback)
    assert anonymous.status_code == 401
    as_viewer = client.get(f"{BASE}/oauth/callback", query_string=callback, headers=view)
    assert as_viewer.status_code == 403
    state = callback["state"]
    tampered = {**callback, "state": state[:10] + ("x" if state[10] != "x" else "y") + state[11:]}
    refused = client.get(f"{BASE}/oauth/callback", query_string=tampered, headers=manage)
    assert refused.status_code == 400
    assert refused.json["error"]["code"] == "invalid_oauth_state"
    assert client.get(f"{BASE}/status", headers=view).json["connected"] is False
    accepted = client.get(f"{BASE}/oauth/callback", query_string=callback, headers=manage)
    assert accepted.status_code == 200
    replayed = client.get(f"{BASE}/oauth/callback", query_string=callback, headers=manage)
    assert replayed.status_code == 400


def test_reports_need_a_linked_property_and_service_accounts_validate(
    app: Flask, google: tuple[FakeGoogleOAuth, FakeGA4]
) -> None:
    manage, view = keys(app)
    client = app.test_client()
    not_connected = client.get(f"{BASE}/reports/traffic", headers=view)
    assert not_connected.status_code == 409
    bad = client.post(
        f"{BASE}/connect",
        json={"service_account": {"type": "service_account", "client_email": "x@y.z"}},
        headers=manage,
    )
    assert bad.status_code == 400
    assert "private_key" in json.dumps(bad.json["error"])
    assert client.post(f"{BASE}/connect", json={}, headers=view).status_code == 403


def test_link_creates_the_mp_secret_when_allowed_and_says_why_not_otherwise(
    app: Flask, google: tuple[FakeGoogleOAuth, FakeGA4]
) -> None:
    oauth, ga4 = google
    prop = ga4.add_property("100", "Existing", time_zone="America/Los_Angeles", currency="USD")
    ga4.add_web_stream(prop, "https://acme.example", "Acme")
    manage, _ = keys(app)
    client = app.test_client()

    # Read-only grant: linked, forwarding off with the reason.
    started = client.post(f"{BASE}/oauth/start", json={}, headers=manage)
    callback = oauth.consent(started.json["authorization_url"])
    client.get(f"{BASE}/oauth/callback", query_string=callback, headers=manage)
    read_only = client.post(f"{BASE}/link", json={"property_id": prop}, headers=manage)
    assert read_only.status_code == 200, read_only.json
    assert read_only.json["connection"]["has_mp_secret"] is False
    assert read_only.json["forwarding"] == {
        "ready": False,
        "reason": "these credentials may only read: reconnect with provisioning "
        "(analytics.edit) to create a Measurement Protocol secret",
    }
    assert "CreateMeasurementProtocolSecret" not in ga4.methods()

    # With edit rights the same link creates the secret; linking again reuses it.
    assert connect_with_oauth(app, oauth, manage).status_code == 200
    linked = client.post(f"{BASE}/link", json={"property_id": prop}, headers=manage)
    assert linked.json["forwarding"] == {"ready": True, "reason": None}
    assert linked.json["connection"]["has_mp_secret"] is True
    assert ga4.methods().count("CreateMeasurementProtocolSecret") == 1
    again = client.post(f"{BASE}/link", json={"property_id": prop}, headers=manage)
    assert again.json["forwarding"] == {"ready": True, "reason": None}
    assert ga4.methods().count("CreateMeasurementProtocolSecret") == 1


def test_provision_can_target_a_known_property(
    app: Flask, google: tuple[FakeGoogleOAuth, FakeGA4]
) -> None:
    oauth, ga4 = google
    prop = ga4.add_property("100", "Named otherwise")
    ga4.add_web_stream(prop, "https://www.acme.example/", "Live")
    manage, _ = keys(app)
    assert connect_with_oauth(app, oauth, manage).status_code == 200
    body = {
        "account_id": "100",
        "display_name": "Acme web",
        "site_url": "https://acme.example",
        "property_id": prop,
    }
    answer = app.test_client().post(f"{BASE}/provision", json=body, headers=manage)
    assert answer.status_code == 200, answer.json
    made = answer.json["provisioned"]
    assert (made["property_id"], made["property_created"], made["stream_created"]) == (
        prop,
        False,
        False,
    )
    assert "CreateProperty" not in ga4.methods() and "CreateDataStream" not in ga4.methods()
    bad = app.test_client().post(
        f"{BASE}/provision", json={**body, "property_id": ""}, headers=manage
    )
    assert bad.status_code == 400
    assert bad.json["error"]["details"][0]["field"] == "property_id"
