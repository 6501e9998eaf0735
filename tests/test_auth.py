"""Permissions: every umetrics route refuses anonymous callers; keys are scoped and hashed."""

from __future__ import annotations

import logging
import re

import pytest
from flask import Flask
from sqlalchemy import select

from flask_umetrics import UMetrics, create_api_key, list_api_keys, revoke_api_key
from flask_umetrics.auth import verify_api_key
from flask_umetrics.db.tables import api_keys, audit_log, stat_readings
from flask_umetrics.state import current_state

from .conftest import AppFactory

#: Routes documented as public in the README ("REST API" section).
PUBLIC_ENDPOINTS = {
    "umetrics_api.health",
    "umetrics_api.openapi_document",
    "umetrics_api.unknown_route",
    # The visitor's own flags and consent (the visitor is the subject): tests/test_flags_api.py
    "umetrics_api.flags_for_subject",
    "umetrics_api.consent",
}
SAMPLE_ARGS = {
    "metric_key": "mrr",
    "key_id": "0123456789abcdef",
    "unknown": "no-such-route",
    "key": "pro-users",
    "client_key": "no-such-client-key",
    "distinct_id": "someone",
    "name": "traffic",
    "insight_id": "1",
    "dashboard_id": "1",
    "annotation_id": "1",
}


#: HTML blueprints with their own gate and tests: tests/test_admin_access.py.
NOT_REST = ("umetrics_admin.", "umetrics_client.")


def umetrics_requests(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, path) for every method of every umetrics REST rule in the url_map."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("umetrics") or rule.endpoint.startswith(NOT_REST):
            continue
        path = re.sub(r"<(?:[a-z]+:)?(\w+)>", lambda m: SAMPLE_ARGS[m.group(1)], rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, path))
    return found


def call(client, method: str, path: str, scope: str = "default", **kwargs):  # type: ignore[no-untyped-def]
    body = None if method == "GET" else {"scope_id": scope, "value": 1, "permission": "ingest"}
    return client.open(path, method=method, query_string={"scope_id": scope}, json=body, **kwargs)


def test_every_route_goes_through_the_router(app: Flask) -> None:
    endpoints = {endpoint for endpoint, _, _ in umetrics_requests(app)}
    assert len(endpoints) >= 10
    for endpoint in endpoints:
        assert hasattr(app.view_functions[endpoint], "umetrics_permission"), endpoint
        if app.view_functions[endpoint].umetrics_permission is None:
            assert endpoint in PUBLIC_ENDPOINTS, f"{endpoint} is public but not documented"


def test_anonymous_requests_are_refused_everywhere(app: Flask, caplog) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    checked = 0
    with caplog.at_level(logging.WARNING, logger="flask_umetrics"):
        for endpoint, method, path in umetrics_requests(app):
            if endpoint in PUBLIC_ENDPOINTS:
                continue
            response = call(client, method, path)
            assert response.status_code == 401, (method, path, response.json)
            assert response.json["error"]["code"] == "authentication_required"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            checked += 1
    assert checked >= 8
    warnings = [r for r in caplog.records if "no @umetrics.authorizer" in r.getMessage()]
    assert len(warnings) == 1  # warned once, not per request
    with app.app_context(), current_state().engine.connect() as connection:
        assert connection.execute(select(stat_readings)).first() is None


def test_authorizer_decides_for_requests_without_a_key(make_app: AppFactory) -> None:
    extension = UMetrics()
    asked: list[tuple[str, str]] = []

    @extension.authorizer
    def can(permission: str, scope_id: str) -> bool:
        asked.append((permission, scope_id))
        return scope_id == "mine" and permission == "metrics.view"

    client = make_app(extension).test_client()
    assert client.get("/umetrics/api/stats?scope_id=mine").status_code == 200
    denied = client.get("/umetrics/api/stats?scope_id=theirs")
    assert denied.status_code == 403 and denied.json["error"]["code"] == "forbidden"
    write = client.post("/umetrics/api/stats/metrics/m/readings?scope_id=mine", json={"value": 1})
    assert write.status_code == 403
    assert asked == [
        ("metrics.view", "mine"),
        ("metrics.view", "theirs"),
        ("metrics.manage", "mine"),
    ]


def test_public_routes_answer_anonymously(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/umetrics/api/health").json["status"] == "ok"
    assert client.get("/umetrics/api/openapi.json").json["openapi"] == "3.1.0"
    assert client.get("/umetrics/api/no-such-route").status_code == 404


def test_a_scope_a_key_cannot_read_or_write_scope_b(app: Flask) -> None:
    with app.app_context():
        key_a = create_api_key("scope-a", "metrics.manage")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key_a}"}
    checked = 0
    for endpoint, method, path in umetrics_requests(app):
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        response = call(client, method, path, scope="scope-b", headers=headers)
        assert response.status_code == 403, (method, path, response.json)
        assert response.json["error"]["code"] == "wrong_scope"
        checked += 1
    assert checked >= 8
    with app.app_context(), current_state().engine.connect() as connection:
        assert connection.execute(select(stat_readings)).all() == []  # nothing written anywhere
    # The same key works on its own scope.
    own = client.post(
        "/umetrics/api/stats/metrics/m/readings?scope_id=scope-a",
        json={"value": 2},
        headers=headers,
    )
    assert own.status_code == 201


@pytest.mark.parametrize(
    ("permission", "read", "write"),
    [("metrics.view", 200, 403), ("metrics.manage", 200, 201), ("ingest", 403, 403)],
)
def test_key_permissions(app: Flask, permission: str, read: int, write: int) -> None:
    with app.app_context():
        key = create_api_key("s", permission)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/umetrics/api/stats?scope_id=s", headers=headers).status_code == read
    response = client.post(
        "/umetrics/api/stats/metrics/m/readings",
        headers=headers,
        json={"scope_id": "s", "value": 1},
    )
    assert response.status_code == write


def test_keys_are_stored_hashed_and_can_be_revoked(app: Flask) -> None:
    with app.app_context():
        key = create_api_key("s", "metrics.view", name="ci", created_by="tester")
        key_id = key.split("_")[1]
        with current_state().engine.connect() as connection:
            stored = connection.execute(select(api_keys)).one()
            audit = connection.execute(select(audit_log.c.action, audit_log.c.actor)).all()
        assert key not in str(tuple(stored)) and key.split("_", 2)[2] not in str(tuple(stored))
        assert stored.key_hash != key and len(stored.key_hash) == 64
        assert audit == [("api_key.create", "tester")]
        assert verify_api_key(key).key_id == key_id  # type: ignore[union-attr]
        assert verify_api_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert verify_api_key("garbage") is None
        assert [k.key_id for k in list_api_keys("s")] == [key_id]
        assert revoke_api_key(key_id) is True
        assert revoke_api_key(key_id) is False
        assert verify_api_key(key) is None
        assert list_api_keys("s") == []
        assert [k.key_id for k in list_api_keys("s", include_revoked=True)] == [key_id]
    response = app.test_client().get(
        "/umetrics/api/stats?scope_id=s", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_api_key"


def test_key_management_over_rest(app: Flask) -> None:
    with app.app_context():
        admin = create_api_key("s", "metrics.manage")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {admin}"}
    created = client.post(
        "/umetrics/api/keys",
        json={"scope_id": "s", "permission": "ingest", "name": "browser"},
        headers=headers,
    )
    assert created.status_code == 201
    new_key, key_id = created.json["key"], created.json["info"]["key_id"]
    assert new_key.split("_")[1] == key_id
    listed = client.get("/umetrics/api/keys?scope_id=s", headers=headers).json["keys"]
    assert sorted(k["permission"] for k in listed) == ["ingest", "metrics.manage"]
    assert new_key not in str(listed)
    assert client.delete(f"/umetrics/api/keys/{key_id}?scope_id=s", headers=headers).json == {
        "key_id": key_id,
        "revoked": True,
    }
    gone = client.delete(f"/umetrics/api/keys/{key_id}?scope_id=s", headers=headers)
    assert gone.status_code == 404
    bad = client.post(
        "/umetrics/api/keys", json={"scope_id": "s", "permission": "root"}, headers=headers
    )
    assert bad.status_code == 400 and bad.json["error"]["details"][0]["field"] == "permission"


def test_anonymous_users_get_401_when_the_subject_loader_knows_nobody(
    make_app: AppFactory,
) -> None:
    extension = UMetrics()
    logged_in: dict[str, str | None] = {"user": None}
    extension.authorizer(lambda permission, scope_id: logged_in["user"] == "admin")
    extension.subject_loader(lambda: (logged_in["user"], {}))
    client = make_app(extension).test_client()
    anonymous = client.get("/umetrics/api/stats")
    assert anonymous.status_code == 401
    assert anonymous.json["error"]["code"] == "authentication_required"
    logged_in["user"] = "guest"
    assert client.get("/umetrics/api/stats").status_code == 403
    logged_in["user"] = "admin"
    assert client.get("/umetrics/api/stats").status_code == 200


def test_compatibility_routes_refuse_anonymous_callers(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_ENABLE_TOGO_API=True, UMETRICS_ENABLE_OPENMETRICS_API=True)
    client = app.test_client()
    checked = 0
    for endpoint, method, path in umetrics_requests(app):
        if not endpoint.startswith(("umetrics_togo.", "umetrics_openmetrics.")):
            continue
        if endpoint == "umetrics_openmetrics.ping":  # documented as public: it stores nothing
            continue
        response = call(client, method, path)
        assert response.status_code in (401, 403), (method, path, response.status_code)
        checked += 1
    assert checked >= 11
