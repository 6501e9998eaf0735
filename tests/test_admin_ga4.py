"""The GA4 dashboard pages with Flask's test client against the local Google fakes: connect with a
service account, list accounts, provision, reports equal to the REST answer (with CSV), OAuth
through the dashboard's own callback, disconnect; viewers cannot change anything; without the
Google libraries the page shows the install hint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_umetrics import UMetrics
from flask_umetrics.ga4 import service

from .admin_html import as_number, csrf_token, table_cells
from .conftest import AppFactory
from .ga4_env import fake_google_config, use_keys, use_oauth_client
from .ga4_fake_oauth import FakeGoogleOAuth, FakeServiceAccount, make_service_account
from .ga4_fake_server import FakeGA4, running_fake

CLIENT_ID = "dash-client.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-dashboard-test-secret"
ADMIN = "/umetrics/admin"
RANGE = {"date_from": "2024-03-01", "date_to": "2024-03-02"}


class Users:
    def __init__(self) -> None:
        self.current = "admin"

    def allows(self, permission: str, scope_id: str) -> bool:
        return self.current == "admin" or permission == "metrics.view"


@pytest.fixture(scope="module")
def account_key() -> FakeServiceAccount:
    return make_service_account("http://placeholder.invalid/token")


@pytest.fixture
def google() -> Iterator[tuple[FakeGoogleOAuth, FakeGA4]]:
    oauth = FakeGoogleOAuth(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with oauth, running_fake() as ga4:
        ga4.add_account("100", "Acme")
        yield oauth, ga4


@pytest.fixture
def users() -> Users:
    return Users()


@pytest.fixture
def app(
    make_app: AppFactory,
    google: tuple[FakeGoogleOAuth, FakeGA4],
    users: Users,
    monkeypatch: pytest.MonkeyPatch,
) -> Flask:
    oauth, ga4 = google
    use_keys(monkeypatch, "k1", k1=b"d" * 32)
    use_oauth_client(monkeypatch, CLIENT_SECRET)
    extension = UMetrics()
    extension.authorizer(users.allows)
    extension.subject_loader(lambda: (users.current, {}))
    return make_app(
        extension,
        SECRET_KEY="admin-ga4-test",
        **fake_google_config(oauth, ga4, CLIENT_ID),
    )


def token(client: FlaskClient, page: str = "/ga4") -> str:
    return csrf_token(client.get(ADMIN + page).get_data(as_text=True))


def api(client: FlaskClient, path: str, **query: Any) -> Any:
    answer = client.get("/umetrics/api/ga4" + path, query_string=query)
    assert answer.status_code == 200, answer.json
    return answer.json


def test_service_account_provision_reports_and_disconnect(
    app: Flask,
    google: tuple[FakeGoogleOAuth, FakeGA4],
    account_key: FakeServiceAccount,
    users: Users,
) -> None:
    oauth, _ = google
    info = dict(account_key.info, token_uri=oauth.token_uri)
    oauth.service_accounts[account_key.email] = account_key.public_pem
    client = app.test_client()

    first = client.get(ADMIN + "/ga4").get_data(as_text=True)
    assert "Not connected" in first and 'data-testid="ga4-connect-form"' in first

    viewer_token = token(client)  # the session's token; the viewer sees no forms
    users.current = "viewer"
    assert 'data-testid="ga4-connect-form"' not in client.get(ADMIN + "/ga4").get_data(as_text=True)
    refused = client.post(
        ADMIN + "/ga4/connect",
        data={"csrf_token": viewer_token, "service_account": json.dumps(info)},
    )
    assert refused.status_code == 403
    assert client.get(ADMIN + "/ga4/accounts").status_code == 403
    users.current = "admin"

    bad = client.post(
        ADMIN + "/ga4/connect", data={"csrf_token": token(client), "service_account": "{nope"}
    )
    assert bad.status_code == 400
    assert "credentials: is not valid JSON" in bad.get_data(as_text=True)
    assert api(client, "/status")["connected"] is False

    connected = client.post(
        ADMIN + "/ga4/connect",
        data={"csrf_token": token(client), "service_account": json.dumps(info)},
    )
    assert connected.status_code == 302
    assert connected.headers["Location"].endswith("/umetrics/admin/ga4/accounts")
    status = api(client, "/status")["connection"]
    assert (status["auth_kind"], status["principal"]) == ("service_account", account_key.email)

    accounts = client.get(ADMIN + "/ga4/accounts").get_data(as_text=True)
    assert "Acme (100)" in accounts and 'data-testid="ga4-provision-form"' in accounts
    missing = client.post(
        ADMIN + "/ga4/provision",
        data={"csrf_token": token(client), "account_id": "100", "display_name": "Acme web"},
    )
    assert missing.status_code == 400 and "site_url:" in missing.get_data(as_text=True)
    provisioned = client.post(
        ADMIN + "/ga4/provision",
        data={
            "csrf_token": token(client),
            "account_id": "100",
            "display_name": "Acme web",
            "site_url": "https://acme.example/",
            "time_zone": "UTC",
            "currency": "EUR",
        },
    )
    assert provisioned.status_code == 302
    status = api(client, "/status")["connection"]
    assert status["property_name"] == "Acme web" and status["has_mp_secret"] is True
    listed = client.get(ADMIN + "/ga4/accounts").get_data(as_text=True)
    assert table_cells(listed, "ga4-properties") == [
        ["Acme (100)", "Acme web", status["property_id"], "linked"]
    ]

    page = client.get(ADMIN + "/ga4", query_string=RANGE).get_data(as_text=True)
    assert status["property_id"] in page
    traffic = api(client, "/reports/traffic", **RANGE)
    rows = table_cells(page, "ga4-traffic")
    columns = ["date", *traffic["metrics"]]
    assert [row[0] for row in rows] == ["2024-03-01", "2024-03-02"]
    assert [as_number(row[1]) for row in rows] == [10, 20]  # sessions
    csv = client.get(
        ADMIN + "/ga4", query_string={**RANGE, "format": "csv", "table": "ga4-traffic"}
    )
    lines = [line.split(",") for line in csv.get_data(as_text=True).splitlines()]
    assert lines[0] == columns
    assert [[line[0], *map(float, line[1:])] for line in lines[1:]] == [
        [r["date"], *(float(r[m]) for m in traffic["metrics"])] for r in traffic["rows"]
    ]
    for name in ("seo", "conversions"):
        answer = api(client, f"/reports/{name}", **RANGE)
        assert len(table_cells(page, f"ga4-{name}")) == len(answer["rows"]) > 0, name

    users.current = "viewer"
    assert (
        client.post(ADMIN + "/ga4/disconnect", data={"csrf_token": viewer_token}).status_code == 403
    )
    users.current = "admin"
    gone = client.post(ADMIN + "/ga4/disconnect", data={"csrf_token": token(client)})
    assert gone.status_code == 302
    assert api(client, "/status")["connected"] is False
    assert "Disconnected from GA4." in client.get(ADMIN + "/ga4").get_data(as_text=True)


def test_oauth_through_the_dashboard_callback(
    app: Flask, google: tuple[FakeGoogleOAuth, FakeGA4]
) -> None:
    oauth, _ = google
    client = app.test_client()
    page = client.get(ADMIN + "/ga4").get_data(as_text=True)
    assert (
        'data-testid="ga4-callback-url">http://localhost/umetrics/admin/ga4/oauth/callback<' in page
    )
    started = client.post(
        ADMIN + "/ga4/oauth/start", data={"csrf_token": csrf_token(page), "provisioning": "on"}
    )
    assert started.status_code == 302
    assert started.headers["Location"].startswith(oauth.auth_uri)
    callback = oauth.consent(started.headers["Location"])
    finished = client.get(ADMIN + "/ga4/oauth/callback", query_string=callback)
    assert finished.status_code == 302
    assert finished.headers["Location"].endswith("/umetrics/admin/ga4/accounts")
    status = api(client, "/status")["connection"]
    assert status["auth_kind"] == "oauth" and status["can_provision"] is True
    replayed = client.get(ADMIN + "/ga4/oauth/callback", query_string=callback)
    assert replayed.status_code == 302  # back to the page with the refusal as a flash
    assert "already completed" in client.get(ADMIN + "/ga4").get_data(as_text=True)


def test_without_google_libraries_the_page_shows_the_install_hint(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "ga4_available", lambda: False)
    client = app.test_client()
    answer = client.get(ADMIN + "/ga4")
    assert answer.status_code == 200
    assert "pip install flask-umetrics[ga4]" in answer.get_data(as_text=True)
    refused = client.post(
        ADMIN + "/ga4/connect",
        data={"csrf_token": token(client, "/experiments/new"), "service_account": "{}"},
    )
    assert refused.status_code == 501
    assert "pip install flask-umetrics[ga4]" in refused.get_data(as_text=True)


def test_without_an_encryption_key_the_page_says_how_to_create_one(
    make_app: AppFactory, users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch, None)
    extension = UMetrics()
    extension.authorizer(users.allows)
    extension.subject_loader(lambda: (users.current, {}))
    app = make_app(extension, SECRET_KEY="admin-ga4-test")
    page = app.test_client().get(ADMIN + "/ga4").get_data(as_text=True)
    assert 'data-testid="ga4-no-encryption-key"' in page
    assert "flask umetrics ga4 gen-encryption-key --key-id k1" in page
    assert "export UMETRICS_ENCRYPTION_KEY_CURRENT=k1 UMETRICS_ENCRYPTION_KEY_k1=" in page
    # With a key the hint is gone.
    use_keys(monkeypatch, "k1", k1=b"d" * 32)
    keyed = make_app(extension, SECRET_KEY="admin-ga4-test")
    assert "ga4-no-encryption-key" not in keyed.test_client().get(ADMIN + "/ga4").get_data(
        as_text=True
    )
