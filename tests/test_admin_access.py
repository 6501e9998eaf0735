"""The dashboard's gate, for every dashboard route taken from ``app.url_map``: anonymous -> 401
(or the login redirect), no permission -> 403, view-only -> pages but no POST, POST without a
CSRF token -> 400; assets and the browser client are public."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

import flask_umetrics
from flask_umetrics import UMetrics, create_api_key
from flask_umetrics.auth import GRANTS

from .conftest import AppFactory

SAMPLE_ARGS = {"filename": "admin.css"}
#: Query strings of routes that take their subject as a parameter.
SAMPLE_QUERIES = {
    "umetrics_admin.people_person": "?distinct_id=sample",
    "umetrics_admin.people_export": "?distinct_id=sample",
    "umetrics_admin.people_delete": "?distinct_id=sample",
}
#: Old link shapes that answer with a permanent redirect to the new one.
REDIRECTS = {"umetrics_admin.people_legacy_person"}
#: GET pages for managers only: an export of personal data and Google account listings. (The
#: OAuth callback is authorized by its signed, one-time state, which only a manager's start can
#: issue: tests/test_admin_ga4.py::test_one_callback_url_completes_the_dashboard_and_the_rest_flow_
#: for_another_scope; without a valid state it connects nothing and redirects.)
MANAGE_ONLY_PAGES = {
    "umetrics_admin.people_export",
    "umetrics_admin.ga4_accounts",
}
#: Callbacks that, without a valid signed state, connect nothing and send the browser back.
STATE_CALLBACKS = {"umetrics_admin.ga4_oauth_callback"}
ROLES = {"viewer": {"metrics.view"}, "manager": {"metrics.view", "metrics.manage"}, "nobody": set()}


def gated_app(make_app: AppFactory, **config: Any) -> Flask:
    """An app whose user and permissions come from the ``X-Test-User`` header."""
    extension = UMetrics()

    @extension.subject_loader
    def subject() -> tuple[str | None, dict[str, Any]]:
        return request.headers.get("X-Test-User"), {}

    @extension.authorizer
    def can(permission: str, scope_id: str) -> bool:
        role = request.headers.get("X-Test-User", "")
        return scope_id == "default" and permission in ROLES.get(role, set())

    app = make_app(extension, SECRET_KEY="test-secret", **config)
    return app


def admin_requests(app: Flask) -> list[tuple[str, str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("umetrics_admin.") or rule.endpoint.endswith(".static"):
            continue
        path = re.sub(
            r"<(?:[a-z]+:)?(\w+)>", lambda m: SAMPLE_ARGS.get(m.group(1), "sample"), rule.rule
        ) + SAMPLE_QUERIES.get(rule.endpoint, "")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, path))
    return found


def test_every_dashboard_route_refuses_anonymous_and_unpermitted(make_app: AppFactory) -> None:
    app = gated_app(make_app)
    client = app.test_client()
    requests = admin_requests(app)
    assert ("umetrics_admin.overview", "GET", "/umetrics/admin/") in requests
    for endpoint, method, path in requests:
        anonymous = client.open(path, method=method)
        assert anonymous.status_code == 401, (endpoint, method)
        assert anonymous.mimetype == "text/html"
        assert b"Log in required" in anonymous.data
        refused = client.open(path, method=method, headers={"X-Test-User": "nobody"})
        assert refused.status_code == 403, (endpoint, method)
        assert b"metrics.view" in refused.data


def test_view_only_sees_pages_but_cannot_post(make_app: AppFactory) -> None:
    app = gated_app(make_app)
    client = app.test_client()
    viewer = {"X-Test-User": "viewer"}
    for endpoint, method, path in admin_requests(app):
        answer = client.open(path, method=method, headers=viewer)
        if method == "GET" and endpoint in MANAGE_ONLY_PAGES:
            assert answer.status_code == 403, endpoint
            assert b"metrics.manage" in answer.data
        elif method == "GET" and endpoint in REDIRECTS:
            assert answer.status_code == 301, endpoint
        elif method == "GET" and endpoint in STATE_CALLBACKS:
            assert answer.status_code == 302, endpoint
        elif method == "GET":
            # Sample path arguments name nothing that exists: 404 is an answer, 5xx is a bug.
            assert answer.status_code in (200, 404), (endpoint, answer.status_code)
        else:
            assert answer.status_code == 403, (endpoint, method)
            assert b"metrics.manage" in answer.data


def test_posts_need_a_csrf_token(make_app: AppFactory) -> None:
    app = gated_app(make_app)
    client = app.test_client()
    posts = [(e, p) for e, m, p in admin_requests(app) if m == "POST"]
    assert len(posts) >= 10
    for endpoint, path in posts:
        answer = client.post(path, headers={"X-Test-User": "manager"}, data={"x": "1"})
        assert answer.status_code == 400, endpoint
        assert b"CSRF" in answer.data or b"form was refused" in answer.data


def test_pages_are_not_cached_and_not_framed(make_app: AppFactory) -> None:
    app = gated_app(make_app)
    answer = app.test_client().get("/umetrics/admin/", headers={"X-Test-User": "viewer"})
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Frame-Options"] == "DENY"


def test_login_redirect_when_the_host_names_a_login_page(make_app: AppFactory) -> None:
    app = gated_app(make_app, UMETRICS_ADMIN_LOGIN_URL="/login")
    answer = app.test_client().get("/umetrics/admin/?scope_id=default")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login?next=%2Fumetrics%2Fadmin%2F%3Fscope_id%3Ddefault"
    plain = app.test_client().get("/umetrics/admin/funnels")
    assert plain.headers["Location"] == "/login?next=%2Fumetrics%2Fadmin%2Ffunnels"
    # A logged-in visitor without the permission is not sent to log in again.
    refused = app.test_client().get("/umetrics/admin/", headers={"X-Test-User": "nobody"})
    assert refused.status_code == 403


def test_a_bad_scope_is_a_400_page(make_app: AppFactory) -> None:
    app = gated_app(make_app)
    answer = app.test_client().get(
        "/umetrics/admin/?scope_id=<b>bad</b>", headers={"X-Test-User": "viewer"}
    )
    assert answer.status_code == 400
    assert b"scope_id" in answer.data
    assert b"<b>bad</b>" not in answer.data


def test_other_scopes_are_refused(make_app: AppFactory) -> None:
    app = gated_app(make_app)
    answer = app.test_client().get(
        "/umetrics/admin/?scope_id=other", headers={"X-Test-User": "manager"}
    )
    assert answer.status_code == 403


def test_assets_and_the_client_are_public(make_app: AppFactory) -> None:
    client = gated_app(make_app).test_client()
    for path in (
        "/umetrics/admin/assets/admin.css",
        "/umetrics/admin/assets/admin.js",
        "/umetrics/admin/assets/vendor/chartjs/chart.umd.min.js",
        "/umetrics/admin/assets/vendor/chartjs/LICENSE.md",
    ):
        answer = client.get(path)
        assert answer.status_code == 200, path
        answer.close()


def test_the_dashboard_can_be_switched_off(make_app: AppFactory) -> None:
    app = gated_app(make_app, UMETRICS_ENABLE_ADMIN=False)
    assert not any(r.endpoint.startswith("umetrics_admin.") for r in app.url_map.iter_rules())
    assert app.test_client().get("/umetrics/admin/").status_code == 404


@pytest.mark.parametrize("table", ["summary", "top-events", "active-users"])
def test_every_overview_table_downloads_as_csv(make_app: AppFactory, table: str) -> None:
    app = gated_app(make_app)
    answer = app.test_client().get(
        f"/umetrics/admin/?format=csv&table={table}", headers={"X-Test-User": "viewer"}
    )
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == f'attachment; filename="umetrics-{table}.csv"'
    missing = app.test_client().get(
        "/umetrics/admin/?format=csv&table=nope", headers={"X-Test-User": "viewer"}
    )
    assert missing.status_code == 404


# --- API keys on the dashboard -------------------------------------------------------------

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def keyed_client(app: Flask, scope_id: str, permission: str) -> FlaskClient:
    """A test client sending a bearer key (it keeps a session cookie, as a browser would)."""
    with app.app_context():
        raw_key = create_api_key(scope_id, permission)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {raw_key}"
    return client


def needed(endpoint: str, method: str) -> str:
    """The permission the dashboard's gate asks of a request."""
    if method == "POST" or endpoint in MANAGE_ONLY_PAGES:
        return "metrics.manage"
    return "metrics.view"


def csrf_from_page(client: FlaskClient) -> str:
    """A CSRF token of ``client``'s session, from a page with a form."""
    page = client.get("/umetrics/admin/settings")
    assert page.status_code == 200
    found = CSRF_INPUT.search(page.get_data(as_text=True))
    assert found is not None, "the settings page has no form for a manager"
    return found.group(1)


@pytest.mark.parametrize("permission", sorted(GRANTS))
def test_api_keys_open_the_dashboard_by_their_grants(make_app: AppFactory, permission: str) -> None:
    app = make_app(SECRET_KEY="test-secret")  # no authorizer: only keys get in
    client = keyed_client(app, "default", permission)
    refused, passed = [], []
    for endpoint, method, path in admin_requests(app):
        answer = client.open(path, method=method, data={"x": "1"})
        permitted = needed(endpoint, method) in GRANTS[permission]
        if not permitted:
            assert answer.status_code == 403, (endpoint, method, answer.status_code)
            # The gate asks for metrics.view first, then what the request needs.
            gate = needed(endpoint, method) if "metrics.view" in GRANTS[permission] else None
            assert (gate or "metrics.view").encode() in answer.data, endpoint
            refused.append(endpoint)
        elif method == "POST":  # permitted, but the form carries no CSRF token
            assert answer.status_code == 400, (endpoint, answer.status_code)
            assert b"form was refused" in answer.data
            passed.append(endpoint)
        else:
            assert answer.status_code in (200, 301, 302, 400, 404), (endpoint, answer.status_code)
            passed.append(endpoint)
    total = len(admin_requests(app))
    posts = sum(1 for _, method, _ in admin_requests(app) if method == "POST")
    expected_refused = {
        "ingest": total,  # an ingest key cannot even read
        "client": total,  # nor can a client key (it reads the GrowthBook SDK payload only)
        "identify": total,  # nor can a server-side identify key
        "openmetrics": total,  # nor an open-metrics key (open-metrics' calls only)
        "metrics.view": posts + len(MANAGE_ONLY_PAGES),
        "metrics.manage": 0,
    }[permission]
    assert (len(refused), len(passed)) == (expected_refused, total - expected_refused)


def test_a_key_of_another_scope_is_refused_everywhere(make_app: AppFactory) -> None:
    app = make_app(SECRET_KEY="test-secret")
    client = keyed_client(app, "elsewhere", "metrics.manage")
    for endpoint, method, path in admin_requests(app):
        answer = client.open(path, method=method, data={"x": "1"})
        assert answer.status_code == 403, (endpoint, method, answer.status_code)
        assert b"another scope" in answer.data


def test_a_manage_key_posts_with_a_token_of_its_own_session(make_app: AppFactory) -> None:
    app = make_app(SECRET_KEY="test-secret")
    manager = keyed_client(app, "default", "metrics.manage")
    token = csrf_from_page(manager)
    # The same token from another session (another browser, or a forged page) is refused.
    stranger = keyed_client(app, "default", "metrics.manage")
    csrf_from_page(stranger)  # the stranger has a session and a token of its own
    viewer = keyed_client(app, "default", "metrics.view")
    posts = [(e, p) for e, m, p in admin_requests(app) if m == "POST"]
    # 12, Features 6, insights and dashboards 7, persons as a segment 1, annotations 2
    assert len(posts) == 28
    for endpoint, path in posts:
        answer = manager.post(path, data={"csrf_token": token})
        assert answer.status_code not in (401, 403) and answer.status_code < 500, endpoint
        assert b"form was refused" not in answer.data, endpoint
        foreign = stranger.post(path, data={"csrf_token": token})
        assert foreign.status_code == 400 and b"form was refused" in foreign.data, endpoint
        header = stranger.post(path, headers={"X-CSRFToken": token})
        assert header.status_code == 400 and b"form was refused" in header.data, endpoint
        # A valid token does not lift the permission check.
        assert viewer.post(path, data={"csrf_token": token}).status_code == 403, endpoint


# --- Content-Security-Policy ---------------------------------------------------------------

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self' https://accounts.google.com"
)


def test_every_dashboard_answer_carries_the_content_security_policy(
    make_app: AppFactory,
) -> None:
    """Pages, CSV downloads, redirects and refusals alike, for every route of the url map."""
    app = gated_app(make_app)
    client = app.test_client()
    seen = set()
    for user in ("viewer", "manager", None):
        headers = {"X-Test-User": user} if user else {}
        for endpoint, method, path in admin_requests(app):
            answer = client.open(path, method=method, headers=headers)
            assert answer.headers.get("Content-Security-Policy") == POLICY, (endpoint, user)
            seen.add(answer.status_code)
    assert {200, 301, 400, 401, 403, 404} <= seen
    csv_answer = client.get(
        "/umetrics/admin/?format=csv&table=summary", headers={"X-Test-User": "viewer"}
    )
    assert csv_answer.headers["Content-Security-Policy"] == POLICY
    # Static assets are not pages: no policy needed on a stylesheet.
    asset = client.get("/umetrics/admin/assets/admin.css")
    assert "Content-Security-Policy" not in asset.headers
    asset.close()


def test_the_policy_follows_the_configured_oauth_endpoint(make_app: AppFactory) -> None:
    app = gated_app(make_app, UMETRICS_GA4_OAUTH_AUTH_URI="http://127.0.0.1:8765/auth?x=1")
    answer = app.test_client().get("/umetrics/admin/", headers={"X-Test-User": "viewer"})
    assert answer.headers["Content-Security-Policy"].endswith(
        "; form-action 'self' http://127.0.0.1:8765"
    )


INLINE_CODE = re.compile(
    r"<style|\sstyle=|\son[a-z]+=|javascript:|<script(?![^>]*\ssrc=)(?![^>]*application/json)",
    re.IGNORECASE,
)


def test_no_template_has_inline_script_or_style() -> None:
    """The policy forbids inline code: every template must keep its script and style in files
    (a ``<script type="application/json">`` data block is not code and is allowed)."""
    root = Path(flask_umetrics.__file__).parent / "admin" / "templates"
    templates = sorted(root.rglob("*.html"))
    assert len(templates) >= 15
    found = [
        f"{path.name}: {match.group(0)!r}"
        for path in templates
        for match in INLINE_CODE.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == []
