"""The example app's own defences: ``?next=`` stays on the site, the session key is never a
constant, its forms need a CSRF token, and behind a trusted proxy its cookies keep ``Secure``."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from sqlalchemy import func, select

from example_app import create_app
from example_app.secret_key import ENV_NAME, KEY_FILE

from .test_example_app import form_token, post_form

#: The fallback key main shipped with: anyone could sign a session with it.
OLD_CONSTANT = "acme-notes-dev-secret-not-for-production"
SIGNUP = {"name": "Ada", "email": "ada@example.org", "password": "correct horse"}


def make(tmp_path: Path, **config: Any) -> Flask:
    return create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "UMETRICS_AUTO_MIGRATE": True, **config}
    )


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.delenv(ENV_NAME, raising=False)
    app = make(tmp_path)
    assert post_form(app.test_client(), "/signup", SIGNUP).status_code == 302
    return app


# -- ?next= ----------------------------------------------------------------------------------

OFF_SITE = [
    "/\t/evil.example",  # the reported one: browsers drop the tab -> //evil.example
    "//evil.example",
    "https://evil.example",
    "http:/evil.example",
    "/\\evil.example",  # browsers read \ as /
    "\\\\evil.example",
    "/\n/evil.example",  # a newline in a Location header was a 500 before
    "/\r/evil.example",
    "/\x00/evil.example",
    "/\u2028/evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
]
ON_SITE = ["/pricing", "/app?tab=all#top", "/umetrics/admin/person?distinct_id=a%2F..%2Fb"]


def log_in_with_next(app: Flask, next_url: str) -> str:
    """Where logging in with ``next=next_url`` (a form field, as the login page posts it) goes."""
    client = app.test_client()
    login = {"email": SIGNUP["email"], "password": SIGNUP["password"], "next": next_url}
    answer = post_form(client, "/login", login)
    assert answer.status_code == 302, (next_url, answer.status_code)
    return str(answer.headers["Location"])


@pytest.mark.parametrize("next_url", OFF_SITE)
def test_login_never_redirects_off_site(app: Flask, next_url: str) -> None:
    assert log_in_with_next(app, next_url) == "/app"


def test_the_reported_next_in_the_query_string(app: Flask) -> None:
    client = app.test_client()
    token = form_token(client, "/login")
    answer = client.post(
        "/login?next=/%09/evil.example",
        data={"email": SIGNUP["email"], "password": SIGNUP["password"], "csrf_token": token},
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/app"


@pytest.mark.parametrize("next_url", ON_SITE)
def test_login_returns_to_local_paths(app: Flask, next_url: str) -> None:
    assert log_in_with_next(app, next_url) == next_url


# -- SECRET_KEY -------------------------------------------------------------------------------


def test_the_secret_key_is_generated_once_per_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_NAME, raising=False)
    first = make(tmp_path / "a")
    path = tmp_path / "a" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    assert first.secret_key == key and len(key) >= 40 and key != OLD_CONSTANT
    assert make(tmp_path / "a").secret_key == key  # reused: sessions survive a restart
    assert make(tmp_path / "b").secret_key not in (key, OLD_CONSTANT)

    monkeypatch.setenv(ENV_NAME, "from-the-secret-store-" + "x" * 20)
    production = make(tmp_path / "c")
    assert production.secret_key == "from-the-secret-store-" + "x" * 20
    assert not (tmp_path / "c" / KEY_FILE).exists()


def test_a_truncated_key_file_is_an_error_not_a_weak_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_NAME, raising=False)
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / KEY_FILE).write_text("short\n")
    with pytest.raises(RuntimeError, match="no usable secret key"):
        make(tmp_path)


def forged_session(secret_key: str, user_id: int) -> str:
    """A session cookie saying ``user_id`` is logged in, signed with ``secret_key``."""
    signer = Flask("forger")
    signer.secret_key = secret_key
    serializer = SecureCookieSessionInterface().get_signing_serializer(signer)
    assert serializer is not None
    return str(serializer.dumps({"user_id": user_id}))


def test_the_old_fallback_key_forges_no_session(app: Flask) -> None:
    client = app.test_client()
    client.set_cookie("session", forged_session(OLD_CONSTANT, 1))
    answer = client.get("/app")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    # The same forgery with the app's real key would work: the check above is meaningful.
    insider = app.test_client()
    insider.set_cookie("session", forged_session(str(app.secret_key), 1))
    assert insider.get("/app").status_code == 200


# -- CSRF on the app's forms ------------------------------------------------------------------


def logged_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    login = {"email": SIGNUP["email"], "password": SIGNUP["password"]}
    assert post_form(client, "/login", login).status_code == 302
    return client


def counts(app: Flask) -> tuple[int, int, str]:
    from example_app.database import db
    from example_app.models import Note, User

    with app.app_context():
        users = db.session.scalar(select(func.count()).select_from(User))
        notes = db.session.scalar(select(func.count()).select_from(Note))
        ada = db.session.scalar(select(User).where(User.email == SIGNUP["email"]))
        assert ada is not None
        return int(users or 0), int(notes or 0), ada.plan


@pytest.mark.parametrize("token", [None, "forged", "from-another-session"])
def test_forms_without_the_sessions_token_change_nothing(app: Flask, token: str | None) -> None:
    client = logged_in(app)
    if token == "from-another-session":
        token = form_token(app.test_client(), "/login")
    extra = {"csrf_token": token} if token else {}
    before = counts(app)
    posts = {
        "/app": {"title": "forged note", "body": "x"},
        "/upgrade": {"plan": "pro"},
        "/signup": {"name": "Eve", "email": "eve@example.org", "password": "correct horse"},
        "/logout": {},
    }
    for path, form in posts.items():
        answer = client.post(path, data={**form, **extra})
        assert answer.status_code == 400, path
        assert "CSRF" in answer.get_data(as_text=True), path
    anonymous = app.test_client()
    login = {"email": SIGNUP["email"], "password": SIGNUP["password"], **extra}
    assert anonymous.post("/login", data=login).status_code == 400
    assert counts(app) == before
    assert client.get("/app").status_code == 200  # the refused logout left the session alone
    assert anonymous.get("/app").status_code == 302  # the refused login logged nobody in


def test_the_same_forms_with_their_token_work(app: Flask) -> None:
    client = logged_in(app)
    users, notes, plan = counts(app)
    assert post_form(client, "/app", {"title": "mine", "body": "x"}).status_code == 302
    assert post_form(client, "/upgrade", {"plan": "pro"}, page="/pricing").status_code == 302
    assert counts(app) == (users, notes + 1, "pro") and plan == "free"
    assert post_form(client, "/logout", {}, page="/app").status_code == 302
    assert client.get("/app").status_code == 302


def test_umetrics_routes_keep_their_own_checks(app: Flask) -> None:
    """CSRFProtect covers the app's forms only: an API call with a key and no form token still
    works (the dashboard's own token check is exercised by the browser tests' forms)."""
    with app.app_context():
        from flask_umetrics import create_api_key

        key = create_api_key("acme", "ingest")
    sent = app.test_client().post(
        "/umetrics/api/events",
        json={"events": [{"event": "api_probe", "distinct_id": "p1"}]},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert sent.status_code == 200, sent.get_data(as_text=True)
    assert sent.json is not None and sent.json["accepted"] == 1


# -- ProxyFix and Secure cookies --------------------------------------------------------------

FORWARDED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "notes.example",
    "X-Forwarded-For": "203.0.113.9",
}


def set_cookie_headers(answer: Any, name: str) -> list[str]:
    return [h for h in answer.headers.getlist("Set-Cookie") if h.startswith(name + "=")]


@pytest.fixture
def cookie_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "t1")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_t1", base64.b64encode(bytes(range(32))).decode())
    monkeypatch.delenv(ENV_NAME, raising=False)


@pytest.mark.parametrize("proxies", [None, "1"])
def test_cookies_are_secure_behind_a_trusted_tls_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cookie_key: None, proxies: str | None
) -> None:
    if proxies is None:
        monkeypatch.delenv("EXAMPLE_TRUSTED_PROXIES", raising=False)
    else:
        monkeypatch.setenv("EXAMPLE_TRUSTED_PROXIES", proxies)
    app = make(tmp_path)
    client = app.test_client()
    page = client.get("/", headers=FORWARDED)
    visitor = set_cookie_headers(page, "acme_visitor")
    consent = client.post(
        "/umetrics/api/consent",
        json={"consent": True},
        headers={
            **FORWARDED,
            "Origin": "https://notes.example" if proxies else "http://localhost",
            "Sec-Fetch-Site": "same-origin",
        },
    )
    assert consent.status_code == 200, consent.get_data(as_text=True)
    consent_cookie = set_cookie_headers(consent, "umetrics_consent")
    assert len(visitor) == 1 and len(consent_cookie) == 1
    # Without a trusted proxy the forwarded headers are ignored (any client can send them).
    secure = proxies is not None
    assert ("; Secure" in visitor[0]) is secure
    assert ("; Secure" in consent_cookie[0]) is secure


def test_a_bad_proxy_count_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_NAME, raising=False)
    with pytest.raises(RuntimeError, match="EXAMPLE_TRUSTED_PROXIES"):
        make(tmp_path, EXAMPLE_TRUSTED_PROXIES="two")
