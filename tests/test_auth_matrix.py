"""The authorization matrix: every REST route in ``app.url_map`` (native and compatibility
blueprints) x every kind of caller, the expectation derived from the route's declared permission
and :data:`flask_umetrics.auth.GRANTS`, never written by hand.

A caller below the route's permission gets 401 (no credentials) or 403; a caller at or above it
gets past the gate: any answer but 401/403/5xx (the sample input may well be a 400 or 404).

A route marked with :func:`flask_umetrics.auth.may_require` (e.g. ``identify``) is also sent an
input that needs that permission too (merging two identified persons, setting an identified
person's properties): a caller holding the route's permission but not that one gets 403
``<permission>_permission_required``.

Writes made with cookie authority (the host's authorizer, or a public route) from another site
get 403 ``cross_site_request``, and with a body that is not JSON 415; keyed calls do not care.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from flask_umetrics import UMetrics, create_api_key, identify
from flask_umetrics.api.compat.togo import router as togo_router
from flask_umetrics.api.origin import STATE_CHANGING
from flask_umetrics.api.routes import router as api_router
from flask_umetrics.auth import GRANTS, OPENMETRICS, PERMISSIONS
from flask_umetrics.db.tables import events

from .conftest import AppFactory, allow_all

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
    "insight_id": "1",
    "dashboard_id": "1",
    "annotation_id": "1",
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
    #: A permission the input also needs (a route's ``may_require``), else None.
    operation: str | None = None


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
            cases.extend(
                Case(rule.endpoint, method, path, view.umetrics_permission, operation=operation)
                for operation in getattr(view, "umetrics_may_require", ())
            )
    # open-metrics' ping is public, but with a sessionId it stores an event: then it needs
    # what open-metrics' other calls need.
    cases.extend(
        Case("umetrics_openmetrics.ping", method, "/umetrics/v1/ping", OPENMETRICS, "sessionId")
        for method in ("GET", "POST")
    )
    return cases


def expected_status(
    permission: str | None, caller: str | None, operation: str | None = None
) -> int | None:
    """401 or 403 when ``caller`` may not pass, else None (any answer but 401/403/5xx)."""
    if permission is None:
        return None
    if caller is None:
        return 401
    if caller == OTHER_SCOPE:
        return 403
    needed = {permission} | ({operation} if operation else set())
    return None if needed <= GRANTS[caller] else 403


def expected_code(case: Case, caller: str | None) -> str:
    """The error code of a refusal: the route's gate, else the operation's own check."""
    if caller in GRANTS and case.permission in GRANTS[caller] and case.operation:
        return f"{case.operation}_permission_required"
    return ERROR_CODES[caller]


_people = itertools.count()


def body_fields(endpoint: str) -> set[str] | None:
    """The fields the route's body model accepts (None: open-metrics, which has no model)."""
    for router in (api_router, togo_router):
        for spec in router.specs:
            if f"{router.blueprint.name}.{spec.endpoint}" == endpoint and spec.body is not None:
                return set(spec.body.model_fields)
    return None


def identity_body(app: Flask, endpoint: str) -> dict[str, Any]:
    """Two new identified persons and the route's input asking to merge them (or to set
    properties of the first): each needs ``identify`` beyond ``ingest``."""
    n = next(_people)
    user, other = f"matrix-user-{n}", f"matrix-other-{n}"
    with app.app_context():
        identify(user, scope_id=SCOPE)
        identify(other, scope_id=SCOPE)
    body = {
        "scope_id": SCOPE,
        "distinct_id": user,
        "user_id": user,
        "uid": user,
        "anon_id": other,
        "sessionId": other,
        "traits": {"plan": "pro"},
        "props": {"plan": "pro"},
        "events": [{"name": "matrix", "user_id": user, "anon_id": other}],
    }
    fields = body_fields(endpoint)
    return body if fields is None else {k: v for k, v in body.items() if k in fields}


def plain_request(case: Case) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and query string sent to an endpoint that is not a query operation."""
    body: dict[str, Any] = {"scope_id": SCOPE, "value": 1, "permission": "ingest"}
    query: dict[str, str] = {"scope_id": SCOPE}
    if case.query == "sessionId":
        body["sessionId"] = "visitor-1"
        if case.method == "GET":
            query["q"] = '{"sessionId": "visitor-1"}'
    return body, query


def send(app: Flask, case: Case, headers: dict[str, str]) -> TestResponse:
    client = app.test_client()
    if case.operation is not None:
        body = identity_body(app, case.endpoint)
        if case.method == "GET":  # open-metrics: the payload as ?q=
            return client.get(case.path, query_string={"q": json.dumps(body)}, headers=headers)
        return client.post(case.path, json=body, headers=headers)
    body, query = plain_request(case)
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
    found = []
    for case in rest_cases(app):
        expected = expected_status(case.permission, caller, case.operation)
        answer = send(app, case, headers)
        status = answer.status_code
        wrong = status >= 500 or (status in (401, 403) if expected is None else status != expected)
        if not wrong and expected is not None:
            wrong = answer.json["error"]["code"] != expected_code(case, caller)
        if wrong:
            want = "not 401/403/5xx" if expected is None else str(expected)
            detail = answer.get_data(as_text=True)[:200]
            what = f"{case.query}{case.operation or ''}"
            found.append(f"{case.method} {case.path} {what}: {status}, want {want}: {detail}")
    return found


def test_the_matrix_covers_every_blueprint_and_permission(make_app: AppFactory) -> None:
    cases = rest_cases(matrix_app(make_app))
    by_blueprint = {case.endpoint.split(".")[0] for case in cases}
    assert by_blueprint == {"umetrics_api", "umetrics_togo", "umetrics_openmetrics"}
    permissions = {case.permission for case in cases} | {case.operation for case in cases}
    assert permissions == {None, *GRANTS}
    assert len(cases) >= 70
    # The identity routes of every blueprint are walked with an identify-level input.
    assert {(c.endpoint, c.method) for c in cases if c.operation == "identify"} == {
        ("umetrics_api.identify_person", "POST"),
        ("umetrics_togo.togo_identify", "POST"),
        ("umetrics_togo.togo_events", "POST"),
        ("umetrics_openmetrics.set_user_id", "GET"),
        ("umetrics_openmetrics.set_user_id", "POST"),
        ("umetrics_openmetrics.set_user_props", "GET"),
        ("umetrics_openmetrics.set_user_props", "POST"),
    }
    # The persons behind a number read what the report reads: metrics.view, GET only.
    persons = {(c.path, c.method, c.permission) for c in cases if c.path.endswith("/persons")}
    assert {
        (f"/umetrics/api/query/{report}/persons", "GET", "metrics.view")
        for report in ("funnel", "retention", "trends", "lifecycle", "stickiness")
    } <= persons
    # The web overview (docs/web-analytics.md) is a report like the others.
    walked = {(c.path, c.method, c.permission) for c in cases}
    assert ("/umetrics/api/query/web", "GET", "metrics.view") in walked
    # Funnel correlation reads what the funnel reads.
    assert ("/umetrics/api/query/funnel/correlation", "GET", "metrics.view") in walked
    assert ("/umetrics/api/query/funnel/correlation/persons", "GET", "metrics.view") in persons
    # Annotations (docs/annotations.md): view lists them, manage changes them.
    assert ("/umetrics/api/annotations", "GET", "metrics.view") in walked
    assert ("/umetrics/api/annotations/1", "DELETE", "metrics.manage") in walked
    # Each key passes somewhere; it is refused somewhere unless it holds every permission.
    for caller, granted in GRANTS.items():
        outcomes = {expected_status(case.permission, caller, case.operation) for case in cases}
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
    # The public write key links ids but may not rewrite identified persons.
    assert expected_status("ingest", "ingest", "identify") == 403
    assert expected_status("ingest", "identify", "identify") is None
    assert expected_status("ingest", "metrics.manage", "identify") is None
    assert expected_status("ingest", "metrics.view", "identify") == 403
    assert expected_status("identify", "identify") is None


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c or "no-credentials")
def test_every_route_against_every_caller(make_app: AppFactory, caller: str | None) -> None:
    app = matrix_app(make_app)
    found = mismatches(app, caller, caller_headers(app, caller))
    assert not found, f"{len(found)} mismatches for {caller}:\n" + "\n".join(found)


@pytest.mark.parametrize("caller", CALLERS[1:])
def test_a_write_key_header_counts_on_ingest_routes_only(make_app: AppFactory, caller: str) -> None:
    """``X-UMetrics-Key`` is the ingestion header (native, togo and open-metrics writes): there
    it follows the grants like a bearer key, anywhere else it is no credential at all (401)."""
    app = matrix_app(make_app)
    bearer = caller_headers(app, caller)["Authorization"]
    headers = {"X-UMetrics-Key": bearer.removeprefix("Bearer ")}
    found = []
    for case in rest_cases(app):
        if case.permission is None:
            continue
        expected = (
            expected_status(case.permission, caller, case.operation)
            if case.permission in WRITE_PERMISSIONS
            else 401
        )
        status = send(app, case, headers).status_code
        if status >= 500 or (status in (401, 403) if expected is None else status != expected):
            found.append(f"{case.method} {case.path} {case.query}: {status}, want {expected}")
    assert not found, "\n".join(found)


#: Route permissions whose keys may also come in ``X-UMetrics-Key`` or the body's ``api_key``.
WRITE_PERMISSIONS = ("ingest", OPENMETRICS)


def send_url_key(app: Flask, case: Case, key: str, headers: dict[str, str]) -> TestResponse:
    """:func:`send`'s request (plain input) with ``key`` as ``?key=``."""
    body, query = plain_request(case)
    return app.test_client().open(
        case.path,
        method=case.method,
        query_string={**query, "key": key},
        json=None if case.method == "GET" else body,
        headers=headers,
    )


@pytest.mark.parametrize("caller", CALLERS[1:])
def test_a_url_key_counts_on_open_metrics_routes_only(make_app: AppFactory, caller: str) -> None:
    """``?key=`` (open-metrics' clients cannot set headers) is read by open-metrics' routes
    only, and there only an ``openmetrics`` key may come that way: any other key is 403
    ``key_not_public`` (a URL is logged and shared). Anywhere else ``?key=`` is no credential
    (401). From another site too: a key is no ambient authority."""
    app = matrix_app(make_app)
    raw = caller_headers(app, caller)["Authorization"].removeprefix("Bearer ")
    found = []
    for origin in ({}, {"Origin": EVIL_ORIGIN, "Sec-Fetch-Site": "cross-site"}):
        for case in rest_cases(app):
            if case.permission is None:
                continue
            if case.permission != OPENMETRICS and origin and is_write(case):
                expected, code = 403, "cross_site_request"  # no key: cookie authority
            elif case.permission != OPENMETRICS:
                expected, code = 401, "authentication_required"
            elif caller != OPENMETRICS:
                expected, code = 403, "key_not_public"
            else:
                expected, code = expected_status(case.permission, caller), None
            answer = send_url_key(app, case, raw, origin)
            status = answer.status_code
            wrong = status >= 500 or (
                status in (401, 403) if expected is None else status != expected
            )
            if not wrong and code is not None:
                wrong = answer.json["error"]["code"] != code
            if wrong:
                found.append(
                    f"{case.method} {case.path} {origin}: {status}, want {expected} {code}"
                )
    assert not found, "\n".join(found)


def test_an_open_metrics_key_writes_into_its_own_scope_only(make_app: AppFactory) -> None:
    """Named in the URL without a scope, the key's scope is used; naming another scope is 403
    ``wrong_scope``; the key reads nothing and writes nowhere but open-metrics' routes."""
    app = matrix_app(make_app)
    with app.app_context():
        key = create_api_key("site-b", OPENMETRICS)
    client = app.test_client()
    payload = json.dumps({"sessionId": "v", "events": [{"name": "e"}]})
    own = client.get("/umetrics/v1/events", query_string={"key": key, "q": payload})
    assert own.status_code == 200 and own.data == b"ok"
    other = client.get(
        "/umetrics/v1/events", query_string={"key": key, "q": payload, "scope_id": SCOPE}
    )
    assert other.status_code == 403 and other.json["error"]["code"] == "wrong_scope"
    header = {"X-UMetrics-Key": key}
    native = client.post(
        "/umetrics/api/events",
        json={"scope_id": "site-b", "events": [{"event": "e", "distinct_id": "v"}]},
        headers=header,
    )
    assert native.status_code == 403 and native.json["error"]["code"] == "insufficient_permission"
    reads = client.get(
        "/umetrics/api/query/top",
        query_string={"scope_id": "site-b"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert reads.status_code == 403


def public_key_app(make_app: AppFactory) -> tuple[Flask, str]:
    """The host names an open-metrics key for keyless calls (UMETRICS_OPENMETRICS_KEY), and
    its authorizer says yes to everything (a logged-in admin's cookies). Same database."""
    first = matrix_app(make_app)
    with first.app_context():
        key = create_api_key(SCOPE, OPENMETRICS)
    extension = UMetrics()
    allow_all(extension)
    app = make_app(
        extension,
        UMETRICS_ENABLE_TOGO_API=True,
        UMETRICS_ENABLE_OPENMETRICS_API=True,
        UMETRICS_OPENMETRICS_KEY=key,
        SECRET_KEY="s",
    )
    return app, key


def test_keyless_open_metrics_calls_act_with_the_hosts_public_key(make_app: AppFactory) -> None:
    """With ``UMETRICS_OPENMETRICS_KEY``, a keyless call is that key's, never the cookies':
    from this site or another (a cross-site page gets what it would get by copying the public
    key into ``?key=``), it writes events but cannot change an identified person even when
    the authorizer would allow it; the other blueprints keep cookie authority."""
    app, _ = public_key_app(make_app)
    client = app.test_client()
    found = []
    for marks in ({}, {"Origin": EVIL_ORIGIN, "Sec-Fetch-Site": "cross-site"}):
        for case in rest_cases(app):
            if case.permission != OPENMETRICS:
                continue
            answer = send(app, case, marks)
            if case.operation is not None:
                ok = answer.status_code == 403 and (
                    answer.json["error"]["code"] == "identify_permission_required"
                )
            else:  # past the gate: any answer but 401/403/5xx (the sample may be a 400)
                ok = answer.status_code not in (401, 403) and answer.status_code < 500
            if not ok:
                found.append(
                    f"{case.method} {case.path} {case.operation} {marks}: {answer.status_code}"
                )
    assert not found, "\n".join(found)
    events = client.post(
        "/umetrics/api/events",
        json={"events": [{"event": "e", "distinct_id": "d"}]},
        headers={"Origin": EVIL_ORIGIN},
    )
    assert events.status_code == 403 and events.json["error"]["code"] == "cross_site_request"


def test_keyless_calls_land_in_the_scope_of_the_hosts_key(make_app: AppFactory) -> None:
    first = matrix_app(make_app)
    with first.app_context():
        key = create_api_key("site-b", OPENMETRICS)
    app = make_app(UMETRICS_ENABLE_OPENMETRICS_API=True, UMETRICS_OPENMETRICS_KEY=key)
    client = app.test_client()
    payload = json.dumps({"sessionId": "v", "events": [{"name": "e"}]})
    assert client.get("/umetrics/v1/events", query_string={"q": payload}).data == b"ok"
    elsewhere = client.get("/umetrics/v1/events", query_string={"q": payload, "scope_id": SCOPE})
    assert elsewhere.status_code == 403 and elsewhere.json["error"]["code"] == "wrong_scope"
    with app.app_context(), app.extensions["umetrics"].engine.connect() as connection:
        scopes = connection.execute(select(events.c.scope_id, events.c.event)).all()
    assert [tuple(row) for row in scopes] == [("site-b", "e")]


def test_the_hosts_public_key_must_be_an_open_metrics_key(make_app: AppFactory) -> None:
    first = matrix_app(make_app)
    with first.app_context():
        ingest = create_api_key(SCOPE, "ingest")
    app = make_app(
        UMETRICS_ENABLE_OPENMETRICS_API=True,
        UMETRICS_OPENMETRICS_KEY=ingest,
    )
    payload = json.dumps({"sessionId": "v", "events": [{"name": "e"}]})
    answer = app.test_client().get("/umetrics/v1/events", query_string={"q": payload})
    assert answer.status_code == 403 and answer.json["error"]["code"] == "key_not_public"
    assert ingest not in answer.get_data(as_text=True)


# --- cookie authority: cross-site writes and non-JSON bodies (issue 12) -------------------------

EVIL_ORIGIN = "https://evil.example"
#: Content types a page on another site can send without a CORS preflight (and one more).
NON_JSON_TYPES = (
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
)


def is_write(case: Case) -> bool:
    """A state-changing request: POST/PUT/PATCH/DELETE, and every open-metrics call that needs
    ``ingest`` (its GET ``?q=`` writes too). Unknown API paths answer a JSON 404 and change
    nothing."""
    if case.endpoint == "umetrics_api.unknown_route":
        return False
    if case.endpoint.startswith("umetrics_openmetrics."):
        return case.permission is not None
    return case.method in STATE_CHANGING


def has_body(case: Case) -> bool:
    return case.method != "GET"


def send_as(client: FlaskClient, case: Case, headers: dict[str, str], content_type: str) -> Any:
    """:func:`send`'s request with its body (if any) sent as ``content_type``."""
    body, query = plain_request(case)
    if not has_body(case):
        return client.open(case.path, method=case.method, query_string=query, headers=headers)
    return client.open(
        case.path,
        method=case.method,
        query_string=query,
        data=json.dumps(body),
        content_type=content_type,
        headers=headers,
    )


def cookie_app(make_app: AppFactory) -> Flask:
    """The host's authorizer says yes to everything: a logged-in admin's cookie session."""
    extension = UMetrics()
    allow_all(extension)
    return make_app(
        extension,
        UMETRICS_ENABLE_TOGO_API=True,
        UMETRICS_ENABLE_OPENMETRICS_API=True,
        SECRET_KEY="s",
    )


def test_the_write_cases_cover_every_blueprint(make_app: AppFactory) -> None:
    writes = [case for case in rest_cases(matrix_app(make_app)) if is_write(case)]
    assert {case.endpoint.split(".")[0] for case in writes} == {
        "umetrics_api",
        "umetrics_togo",
        "umetrics_openmetrics",
    }
    # ``identify`` is never a route's own permission: it is asked for by the operation; ``client``
    # only reads (the GrowthBook SDK payload).
    assert {case.permission for case in writes} == {None, *GRANTS} - {"identify", "client"}
    assert {c.endpoint.split(".")[0] for c in writes if c.permission == OPENMETRICS} == {
        "umetrics_openmetrics"
    }
    assert {case.operation for case in writes if case.operation} >= {"identify"}
    assert {case.method for case in writes} == {"GET", "POST", "PUT", "PATCH", "DELETE"}
    assert len(writes) >= 38


@pytest.mark.parametrize(
    "marks",
    [{"Origin": EVIL_ORIGIN}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}],
    ids=["origin", "sec-fetch-site", "null-origin"],
)
def test_cookie_writes_from_another_site_get_403(
    make_app: AppFactory, marks: dict[str, str]
) -> None:
    app = cookie_app(make_app)
    client = app.test_client()
    found = []
    for case in rest_cases(app):
        if not is_write(case):
            continue
        for content_type in ("application/json", "text/plain"):
            answer = send_as(client, case, marks, content_type)
            code = (answer.get_json(silent=True) or {}).get("error", {}).get("code")
            if answer.status_code != 403 or code != "cross_site_request":
                found.append(f"{case.method} {case.path} {content_type}: {answer.status_code}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("content_type", NON_JSON_TYPES)
def test_cookie_writes_with_a_non_json_body_get_415(
    make_app: AppFactory, content_type: str
) -> None:
    app = cookie_app(make_app)
    client = app.test_client()
    found = []
    for case in rest_cases(app):
        if not (is_write(case) and has_body(case)):
            continue
        for headers in ({"Origin": "http://localhost"}, {}):
            answer = send_as(client, case, headers, content_type)
            code = (answer.get_json(silent=True) or {}).get("error", {}).get("code")
            if answer.status_code != 415 or code != "unsupported_media_type":
                found.append(f"{case.method} {case.path} {headers}: {answer.status_code}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("caller", [*GRANTS, OTHER_SCOPE])
def test_key_calls_are_unaffected_by_origin_and_content_type(
    make_app: AppFactory, caller: str
) -> None:
    """A key is no ambient authority: from another site, as text/plain, every keyed route
    answers as the plain matrix says (past the gate, or the key's own 403)."""
    app = matrix_app(make_app)
    headers = {**caller_headers(app, caller), "Origin": EVIL_ORIGIN, "Sec-Fetch-Site": "cross-site"}
    client = app.test_client()
    found = []
    for case in rest_cases(app):
        if case.permission is None:
            continue  # public routes take no key: the origin rule applies (tested above)
        expected = expected_status(case.permission, caller)
        status = send_as(client, case, headers, "text/plain").status_code
        wrong = status >= 500 or status == 415
        wrong = wrong or (status in (401, 403) if expected is None else status != expected)
        if wrong:
            found.append(f"{case.method} {case.path} {case.query}: {status}, want {expected}")
    assert not found, "\n".join(found)


#: Public routes that are rate-limited besides every ``ingest`` route (open-metrics' ping may
#: store an event); the rest (health, the OpenAPI document, unknown paths) answer from memory.
RATE_LIMITED_PUBLIC = (
    "umetrics_api.flags_for_subject",
    "umetrics_api.consent",
    "umetrics_openmetrics.ping",
)


def test_each_public_endpoint_answers_429_past_its_limit(make_app: AppFactory) -> None:
    """Every public or ingest route, each from a client IP of its own: 2 requests pass the gate,
    the third is 429 ``rate_limited`` with ``Retry-After``; other routes are never limited."""
    app = make_app(
        UMETRICS_ENABLE_TOGO_API=True,
        UMETRICS_ENABLE_OPENMETRICS_API=True,
        SECRET_KEY="s",
        UMETRICS_RATELIMIT_INGEST="2 per minute",
        UMETRICS_RATELIMIT_PUBLIC="2 per minute",
    )
    headers = caller_headers(app, "ingest")
    address = ["10.0.0.1"]
    inner = app.wsgi_app

    def from_address(environ: dict[str, Any], start_response: Any) -> Any:
        environ["REMOTE_ADDR"] = address[0]
        return inner(environ, start_response)

    app.wsgi_app = from_address  # type: ignore[method-assign]
    found, limited = [], set()
    for index, case in enumerate(rest_cases(app)):
        address[0] = f"10.{index // 250}.{index % 250}.1"
        public = case.permission in WRITE_PERMISSIONS or case.endpoint in RATE_LIMITED_PUBLIC
        statuses = [send(app, case, headers).status_code for _ in range(3)]
        if public:
            third = send(app, case, headers)
            if statuses[:2].count(429) or statuses[2] != 429 or third.status_code != 429:
                found.append(f"{case.method} {case.path}: {statuses}, want 2 x not-429 then 429")
            elif (
                third.json["error"]["code"] != "rate_limited" or "Retry-After" not in third.headers
            ):
                found.append(f"{case.method} {case.path}: 429 without rate_limited/Retry-After")
            limited.add(case.endpoint)
        elif 429 in statuses:
            found.append(f"{case.method} {case.path}: {statuses}, a non-public route was limited")
    assert found == []
    assert {
        "umetrics_api.events_ingest",
        "umetrics_api.identify_person",
        "umetrics_api.flags_for_subject",
        "umetrics_api.consent",
        "umetrics_togo.togo_events",
        "umetrics_togo.togo_identify",
        "umetrics_openmetrics.log_events",
        "umetrics_openmetrics.set_user_id",
        "umetrics_openmetrics.set_user_props",
        "umetrics_openmetrics.ping",
    } <= limited
