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
from .ga4_env import fake_google, fake_google_config, use_keys, use_oauth_client
from .ga4_fake_oauth import FakeGoogleOAuth, FakeServiceAccount, make_service_account
from .ga4_fake_server import DATA_SERVICE, FakeGA4

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
    with fake_google(CLIENT_ID, CLIENT_SECRET) as servers:
        yield servers


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
            "time_zone": "America/Los_Angeles",
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

    _, ga4 = google
    data_before = len(ga4.methods(DATA_SERVICE))
    page = client.get(ADMIN + "/ga4", query_string=RANGE).get_data(as_text=True)
    assert status["property_id"] in page
    # The three reports come from one batchRunReports call, with its three sub-reports.
    assert ga4.methods(DATA_SERVICE)[data_before:] == ["BatchRunReports"]
    (batch,) = ga4.requests("BatchRunReports")
    assert [len(r.dimensions) for r in batch.requests] == [1, 2, 1]  # traffic, seo, key events
    assert all(r.date_ranges[0].start_date == "2024-03-01" for r in batch.requests)
    assert 'data-testid="ga4-calendar">days in America/Los_Angeles · money in EUR</dd>' in page
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


def test_without_the_ga4_extra_the_page_renders_the_install_hint_not_a_500(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make demo`` installs ``.[demo]`` only: neither the Google libraries nor oauthlib. The
    page must not import the OAuth module (whose import needs oauthlib) to show the hint."""
    import sys

    monkeypatch.setattr(service, "ga4_available", lambda: False)
    monkeypatch.setitem(sys.modules, "oauthlib", None)  # `import oauthlib...` raises ImportError
    monkeypatch.delitem(sys.modules, "flask_umetrics.ga4.oauth", raising=False)
    answer = app.test_client().get(ADMIN + "/ga4")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert 'data-testid="ga4-install-hint"' in page
    assert 'data-testid="ga4-callback-url"' not in page


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


CALLBACK = "http://localhost/umetrics/admin/ga4/oauth/callback"


def test_one_callback_url_completes_the_dashboard_and_the_rest_flow_for_another_scope(
    app: Flask, google: tuple[FakeGoogleOAuth, FakeGA4]
) -> None:
    """Google compares redirect URIs exactly: with only the page's URL registered, a flow for a
    non-default scope completes whether the dashboard or the REST API started it."""
    oauth, _ = google
    oauth.registered_redirect_uris = {CALLBACK}
    client = app.test_client()
    page = client.get(ADMIN + "/ga4", query_string={"scope_id": "site-b"}).get_data(as_text=True)
    assert f'data-testid="ga4-callback-url">{CALLBACK}<' in page
    started = client.post(
        ADMIN + "/ga4/oauth/start",
        data={"csrf_token": csrf_token(page), "scope_id": "site-b"},
    )
    assert started.status_code == 302
    callback = oauth.consent(started.headers["Location"])
    assert oauth.authorizations[-1]["redirect_uri"] == CALLBACK
    finished = client.get(ADMIN + "/ga4/oauth/callback", query_string=callback)
    assert finished.status_code == 302
    assert finished.headers["Location"] == "/umetrics/admin/ga4/accounts?scope_id=site-b"
    assert api(client, "/status", scope_id="site-b")["connection"]["auth_kind"] == "oauth"
    assert api(client, "/status")["connected"] is False  # the default scope is untouched

    # REST: an API client starts the flow for site-c; the browser that comes back from Google
    # carries no dashboard session, only the signed state.
    rest = client.post("/umetrics/api/ga4/oauth/start", json={"scope_id": "site-c"})
    assert rest.status_code == 200, rest.json
    callback = oauth.consent(rest.json["authorization_url"])
    assert oauth.authorizations[-1]["redirect_uri"] == CALLBACK
    browser = app.test_client()
    done = browser.get(ADMIN + "/ga4/oauth/callback", query_string=callback)
    assert done.status_code == 302
    assert done.headers["Location"] == "/umetrics/admin/ga4/accounts?scope_id=site-c"
    assert api(client, "/status", scope_id="site-c")["connection"]["auth_kind"] == "oauth"
    # Replayed or forged states connect nothing.
    again = browser.get(ADMIN + "/ga4/oauth/callback", query_string=callback)
    assert again.status_code == 302 and again.headers["Location"].endswith("scope_id=site-c")
    forged = browser.get(
        ADMIN + "/ga4/oauth/callback", query_string={"state": "x" + callback["state"], "code": "c"}
    )
    assert forged.status_code == 302 and forged.headers["Location"] == "/umetrics/admin/ga4"


def test_the_callback_url_is_https_behind_a_proxy_and_can_be_pinned(
    app: Flask, make_app: AppFactory, google: tuple[FakeGoogleOAuth, FakeGA4]
) -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1)  # type: ignore[method-assign]
    page = app.test_client().get(
        ADMIN + "/ga4", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "stats.example"}
    )
    text = page.get_data(as_text=True)
    assert (
        'data-testid="ga4-callback-url">https://stats.example/umetrics/admin/ga4/oauth/callback<'
        in text
    )
    oauth, ga4 = google
    pinned_url = "https://stats.example/umetrics/admin/ga4/oauth/callback"
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: True)
    pinned = make_app(
        extension,
        SECRET_KEY="admin-ga4-test",
        UMETRICS_GA4_OAUTH_REDIRECT_URI=pinned_url,
        **fake_google_config(oauth, ga4, CLIENT_ID),
    )
    client = pinned.test_client()
    assert f'data-testid="ga4-callback-url">{pinned_url}<' in client.get(ADMIN + "/ga4").get_data(
        as_text=True
    )
    rest = client.post("/umetrics/api/ga4/oauth/start", json={})
    assert rest.status_code == 200
    oauth.consent(rest.json["authorization_url"])
    assert oauth.authorizations[-1]["redirect_uri"] == pinned_url
