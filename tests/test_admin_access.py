"""The dashboard's gate, for every dashboard route taken from ``app.url_map``: anonymous -> 401
(or the login redirect), no permission -> 403, view-only -> pages but no POST, POST without a
CSRF token -> 400; assets and the browser client are public."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask, request

from flask_umetrics import UMetrics

from .conftest import AppFactory

SAMPLE_ARGS = {"filename": "admin.css"}
#: GET pages for managers only: an export of personal data, Google account listings, and the
#: OAuth callback that stores a refresh token.
MANAGE_ONLY_PAGES = {
    "umetrics_admin.people_export",
    "umetrics_admin.ga4_accounts",
    "umetrics_admin.ga4_oauth_callback",
}
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
        )
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
