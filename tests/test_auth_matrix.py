"""The authorization matrix: every REST route in ``app.url_map`` (native and compatibility
blueprints) x every kind of caller, the expectation derived from the route's declared permission
and :data:`flask_umetrics.auth.GRANTS`, never written by hand.

A caller below the route's permission gets 401 (no credentials) or 403; a caller at or above it
gets past the gate: any answer but 401/403/5xx (the sample input may well be a 400 or 404).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_umetrics import create_api_key
from flask_umetrics.auth import GRANTS, PERMISSIONS

from .conftest import AppFactory

SCOPE = "default"
#: The REST blueprints; the dashboard has its own matrix in tests/test_admin_access.py.
REST_BLUEPRINTS = ("umetrics_api.", "umetrics_togo.", "umetrics_openmetrics.")
SAMPLE_ARGS = {
    "metric_key": "mrr",
    "key_id": "0123456789abcdef",
    "unknown": "no-such-route",
    "key": "no-such-experiment",
    "client_key": "no-such-client-key",
    "distinct_id": "someone",
    "name": "traffic",
}
#: Callers: None (no credentials), "other-scope" (a manage key of another scope), or a key of
#: the route's scope with that permission.
OTHER_SCOPE = "other-scope"
CALLERS: tuple[str | None, ...] = (None, OTHER_SCOPE, *GRANTS)
#: The error code of a refusal, by caller.
ERROR_CODES: dict[str | None, str] = {
    None: "authentication_required",
    OTHER_SCOPE: "wrong_scope",
    **{permission: "insufficient_permission" for permission in GRANTS},
}


@dataclass(frozen=True)
class Case:
    """One request of the matrix and the permission its route declares (None: public)."""

    endpoint: str
    method: str
    path: str
    permission: str | None
    query: str = ""


def matrix_app(make_app: AppFactory) -> Flask:
    return make_app(
        UMETRICS_ENABLE_TOGO_API=True, UMETRICS_ENABLE_OPENMETRICS_API=True, SECRET_KEY="s"
    )


def rest_cases(app: Flask) -> list[Case]:
    """Every method of every REST rule, with the permission its view function declares."""
    cases = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(REST_BLUEPRINTS):
            continue
        view = app.view_functions[rule.endpoint]
        assert hasattr(view, "umetrics_permission"), f"{rule.endpoint} declares no permission"
        path = re.sub(r"<(?:[a-z]+:)?(\w+)>", lambda m: SAMPLE_ARGS[m.group(1)], rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            cases.append(Case(rule.endpoint, method, path, view.umetrics_permission))
    # open-metrics' ping is public, but with a sessionId it stores an event: then it is ingest.
    cases.extend(
        Case("umetrics_openmetrics.ping", method, "/umetrics/v1/ping", "ingest", "sessionId")
        for method in ("GET", "POST")
    )
    return cases


def expected_status(permission: str | None, caller: str | None) -> int | None:
    """401 or 403 when ``caller`` may not pass, else None (any answer but 401/403/5xx)."""
    if permission is None:
        return None
    if caller is None:
        return 401
    if caller == OTHER_SCOPE:
        return 403
    return None if permission in GRANTS[caller] else 403


def send(client: FlaskClient, case: Case, headers: dict[str, str]) -> TestResponse:
    body: dict[str, Any] = {"scope_id": SCOPE, "value": 1, "permission": "ingest"}
    query: dict[str, str] = {"scope_id": SCOPE}
    if case.query == "sessionId":
        body["sessionId"] = "visitor-1"
        if case.method == "GET":
            query["q"] = '{"sessionId": "visitor-1"}'
    json_body = None if case.method == "GET" else body
    return client.open(
        case.path, method=case.method, query_string=query, json=json_body, headers=headers
    )


def caller_headers(app: Flask, caller: str | None) -> dict[str, str]:
    if caller is None:
        return {}
    with app.app_context():
        if caller == OTHER_SCOPE:
            raw = create_api_key("another", "metrics.manage")
        else:
            raw = create_api_key(SCOPE, caller)
    return {"Authorization": f"Bearer {raw}"}


def mismatches(app: Flask, caller: str | None, headers: dict[str, str]) -> list[str]:
    client = app.test_client()
    found = []
    for case in rest_cases(app):
        expected = expected_status(case.permission, caller)
        answer = send(client, case, headers)
        status = answer.status_code
        wrong = status >= 500 or (status in (401, 403) if expected is None else status != expected)
        if not wrong and expected is not None:
            wrong = answer.json["error"]["code"] != ERROR_CODES[caller]
        if wrong:
            want = "not 401/403/5xx" if expected is None else str(expected)
            detail = answer.get_data(as_text=True)[:200]
            found.append(f"{case.method} {case.path} {case.query}: {status}, want {want}: {detail}")
    return found


def test_the_matrix_covers_every_blueprint_and_permission(make_app: AppFactory) -> None:
    cases = rest_cases(matrix_app(make_app))
    by_blueprint = {case.endpoint.split(".")[0] for case in cases}
    assert by_blueprint == {"umetrics_api", "umetrics_togo", "umetrics_openmetrics"}
    permissions = {case.permission for case in cases}
    assert permissions == {None, *GRANTS}
    assert len(cases) >= 70
    # Each key passes somewhere; it is refused somewhere unless it holds every permission.
    for caller, granted in GRANTS.items():
        outcomes = {expected_status(case.permission, caller) for case in cases}
        assert outcomes == ({None} if granted == set(PERMISSIONS) else {None, 403}), caller


def test_the_expectation_follows_the_grants() -> None:
    assert expected_status("ingest", "ingest") is None
    assert expected_status("metrics.view", "ingest") == 403
    assert expected_status("ingest", "metrics.view") == 403  # a read key cannot write events
    assert expected_status("metrics.manage", "metrics.view") == 403
    assert expected_status("ingest", "metrics.manage") is None
    assert expected_status("metrics.view", OTHER_SCOPE) == 403
    assert expected_status("metrics.view", None) == 401
    assert expected_status(None, None) is None


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c or "no-credentials")
def test_every_route_against_every_caller(make_app: AppFactory, caller: str | None) -> None:
    app = matrix_app(make_app)
    found = mismatches(app, caller, caller_headers(app, caller))
    assert not found, f"{len(found)} mismatches for {caller}:\n" + "\n".join(found)


@pytest.mark.parametrize("caller", CALLERS[1:])
def test_a_write_key_header_counts_on_ingest_routes_only(make_app: AppFactory, caller: str) -> None:
    """``X-UMetrics-Key`` is the ingestion header: there it follows the grants like a bearer
    key, anywhere else it is no credential at all (401)."""
    app = matrix_app(make_app)
    bearer = caller_headers(app, caller)["Authorization"]
    headers = {"X-UMetrics-Key": bearer.removeprefix("Bearer ")}
    client = app.test_client()
    found = []
    for case in rest_cases(app):
        if case.permission is None:
            continue
        expected = expected_status(case.permission, caller) if case.permission == "ingest" else 401
        status = send(client, case, headers).status_code
        if status >= 500 or (status in (401, 403) if expected is None else status != expected):
            found.append(f"{case.method} {case.path} {case.query}: {status}, want {expected}")
    assert not found, "\n".join(found)
