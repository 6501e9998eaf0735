"""Cross-site request forgery and CORS (issue 12): a page on another site cannot make a logged-in
admin's or a visitor's browser change anything through the REST API, key-authenticated calls and
the browser client's beacons still work, and ``UMETRICS_ALLOWED_ORIGINS`` opens the browser
endpoints (and only those) to the front ends the host lists."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from flask_umetrics import (
    UMetrics,
    create_api_key,
    create_experiment,
    get_experiment,
    start_experiment,
)
from flask_umetrics.config import resolve_config
from flask_umetrics.db.tables import audit_log, events
from flask_umetrics.errors import ConfigurationError

from .admin_html import csrf_token
from .conftest import AppFactory
from .demo_env import seeded_demo

API = "/umetrics/api"
EVIL = "https://evil.example"
FRONT = "https://app.example.com"
#: The forged request of issue 12: a text/plain form whose body is JSON, the duplicate
#: ``scope_id`` absorbing the ``=`` a form adds.
FORGED_BODY = '{"scope_id":"x=","scope_id":"acme"}'
KILL = f"{API}/experiments/pricing-page/kill"
EXPERIMENT = {
    "key": "pricing-page",
    "name": "Pricing page",
    "kind": "experiment",
    "variants": [{"key": "control", "weight": 0.5}, {"key": "annual", "weight": 0.5}],
}


@pytest.fixture
def cookie_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A consent-cookie key, so ``/api/consent`` sets a cookie."""
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "k1")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_k1", base64.b64encode(b"k" * 32).decode())


def admin_app(make_app: AppFactory, **config: Any) -> Flask:
    """The host's authorizer says yes: the caller is a logged-in admin (a cookie session)."""
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: True)
    extension.subject_loader(lambda: ("admin", {}))
    app = make_app(extension, SECRET_KEY="cross-site-test", **config)
    with app.app_context():
        create_experiment(EXPERIMENT, scope_id="acme")
        start_experiment("pricing-page", scope_id="acme")
    return app


def state(app: Flask) -> tuple[str, bool, list[str]]:
    """The experiment's status, whether it is killed, and its audit trail's actions."""
    with app.app_context():
        experiment = get_experiment("pricing-page", scope_id="acme")
        assert experiment is not None
        with app.extensions["umetrics"].engine.connect() as connection:
            actions = connection.execute(select(audit_log.c.action).order_by(audit_log.c.id))
            trail = [action for action in actions.scalars() if action.startswith("experiment.")]
    return experiment.status, experiment.killed, trail


UNTOUCHED = ("running", False, ["experiment.create", "experiment.start"])


def stored_events(app: Flask) -> int:
    with app.app_context(), app.extensions["umetrics"].engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(events)).scalar_one())


# --- the forged request is refused before anything changes -----------------------------------


def test_the_forged_text_plain_kill_from_another_site_is_refused(make_app: AppFactory) -> None:
    app = admin_app(make_app)
    answer = app.test_client().post(
        KILL, data=FORGED_BODY, content_type="text/plain", headers={"Origin": EVIL}
    )
    assert answer.status_code == 403
    error = answer.json["error"]
    assert error["code"] == "cross_site_request"
    assert error["details"] == [
        {"field": "Origin", "message": "must be this site or in UMETRICS_ALLOWED_ORIGINS"}
    ]
    assert EVIL in error["message"] and "http://localhost" in error["message"]
    assert state(app) == UNTOUCHED


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},  # no Origin, but the browser says where it came from
        {"Origin": "null"},  # a sandboxed frame or a file: page
        {"Origin": "http://localhost:8080"},  # same host, another port: another origin
        {"Origin": "http://sub.localhost"},  # a sibling: same site, another origin
        {"Origin": EVIL, "Sec-Fetch-Site": "same-origin"},  # Origin wins
    ],
    ids=["sec-fetch-site", "null", "other-port", "subdomain", "origin-over-sec-fetch"],
)
def test_other_cross_site_marks_are_refused_even_with_json(
    make_app: AppFactory, headers: dict[str, str]
) -> None:
    app = admin_app(make_app)
    answer = app.test_client().post(KILL, json={"scope_id": "acme"}, headers=headers)
    assert answer.status_code == 403 and answer.json["error"]["code"] == "cross_site_request"
    field = "Origin" if "Origin" in headers else "Sec-Fetch-Site"
    assert answer.json["error"]["details"][0]["field"] == field
    assert state(app) == UNTOUCHED


@pytest.mark.parametrize(
    ("content_type", "headers"),
    [
        ("text/plain", {"Origin": "http://localhost"}),
        ("text/plain", {"Sec-Fetch-Site": "same-origin"}),
        ("text/plain", {}),  # an old browser that sends neither header
        ("application/x-www-form-urlencoded", {}),
        ("multipart/form-data; boundary=x", {}),
        ("application/json-patch+json", {}),
    ],
)
def test_a_cookie_write_must_be_json_even_from_this_site(
    make_app: AppFactory, content_type: str, headers: dict[str, str]
) -> None:
    app = admin_app(make_app)
    answer = app.test_client().post(
        KILL, data=FORGED_BODY, content_type=content_type, headers=headers
    )
    assert answer.status_code == 415
    error = answer.json["error"]
    assert error["code"] == "unsupported_media_type"
    assert error["details"] == [{"field": "Content-Type", "message": "must be application/json"}]
    assert state(app) == UNTOUCHED


def test_a_bodyless_form_post_names_its_type_and_is_refused(make_app: AppFactory) -> None:
    """A cross-site ``<form>`` always sends a Content-Type, even with no fields."""
    app = admin_app(make_app)
    answer = app.test_client().post(
        KILL + "?scope_id=acme", data=b"", content_type="application/x-www-form-urlencoded"
    )
    assert answer.status_code == 415
    assert state(app) == UNTOUCHED


# --- the same change from this site, the dashboard, or a key works -----------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "https://localhost"},  # behind a TLS proxy without ProxyFix: same host
        {},  # a script with its own cookie: nothing to forge
    ],
    ids=["same-origin", "https-behind-proxy", "no-browser-headers"],
)
def test_the_same_kill_as_json_from_this_site_works(
    make_app: AppFactory, headers: dict[str, str]
) -> None:
    app = admin_app(make_app)
    answer = app.test_client().post(KILL, json={"scope_id": "acme"}, headers=headers)
    assert answer.status_code == 200, answer.json
    assert answer.json["killed"] is True
    assert state(app) == ("running", True, [*UNTOUCHED[2], "experiment.kill"])


def test_a_bodyless_cookie_delete_from_this_site_needs_no_content_type(
    make_app: AppFactory,
) -> None:
    app = admin_app(make_app)
    with app.app_context():
        create_experiment({**EXPERIMENT, "key": "draft"}, scope_id="acme")
    client = app.test_client()
    refused = client.delete(f"{API}/experiments/draft?scope_id=acme", headers={"Origin": EVIL})
    assert refused.status_code == 403
    deleted = client.delete(
        f"{API}/experiments/draft?scope_id=acme", headers={"Origin": "http://localhost"}
    )
    assert deleted.status_code == 200 and deleted.json == {"key": "draft", "deleted": True}


def test_an_allowed_origin_passes_the_origin_check(make_app: AppFactory) -> None:
    app = admin_app(make_app, UMETRICS_ALLOWED_ORIGINS=FRONT)
    client = app.test_client()
    text = client.post(KILL, data=FORGED_BODY, content_type="text/plain", headers={"Origin": FRONT})
    assert text.status_code == 415  # still JSON only
    answer = client.post(KILL, json={"scope_id": "acme"}, headers={"Origin": FRONT})
    assert answer.status_code == 200 and answer.json["killed"] is True


def test_a_manage_key_kills_from_anywhere_with_any_content_type(make_app: AppFactory) -> None:
    app = admin_app(make_app)
    with app.app_context():
        key = create_api_key("acme", "metrics.manage")
    answer = app.test_client().post(
        KILL,
        data=FORGED_BODY,
        content_type="text/plain",
        headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site", "Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200 and answer.json["killed"] is True
    assert state(app) == ("running", True, [*UNTOUCHED[2], "experiment.kill"])


def test_the_dashboard_kill_with_its_csrf_token_still_works(make_app: AppFactory) -> None:
    app = admin_app(make_app)
    client = app.test_client()
    page = "/umetrics/admin/experiments/pricing-page?scope_id=acme"
    token = csrf_token(client.get(page).get_data(as_text=True))
    forged = client.post(
        "/umetrics/admin/experiments/pricing-page/kill?scope_id=acme",
        data={"scope_id": "acme"},
        headers={"Origin": EVIL},
    )
    assert forged.status_code == 400  # no token: the dashboard's own CSRF defence
    assert state(app) == UNTOUCHED
    killed = client.post(
        "/umetrics/admin/experiments/pricing-page/kill?scope_id=acme",
        data={"csrf_token": token, "scope_id": "acme"},
        headers={"Origin": "http://localhost"},
    )
    assert killed.status_code == 302
    assert state(app) == ("running", True, [*UNTOUCHED[2], "experiment.kill"])


# --- the browser client's beacon and the public consent endpoint -------------------------------


def beacon_body(key: str, name: str = "left_page") -> str:
    batch = [{"event": name, "distinct_id": "visitor-1", "uuid": "0" * 31 + "1"}]
    return json.dumps({"api_key": key, "scope_id": "acme", "events": batch})


@pytest.mark.parametrize("origin", ["http://localhost", EVIL])
def test_a_beacon_with_the_write_key_in_a_text_plain_body_is_stored(
    make_app: AppFactory, origin: str
) -> None:
    """``sendBeacon`` cannot set headers: the key rides in the body, which is not ambient
    authority (a page on another site could hold the public key anyway)."""
    app = admin_app(make_app)
    with app.app_context():
        key = create_api_key("acme", "ingest")
    answer = app.test_client().post(
        f"{API}/events",
        data=beacon_body(key),
        content_type="text/plain;charset=UTF-8",
        headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"},
    )
    assert answer.status_code == 200, answer.json
    assert (answer.json["accepted"], answer.json["rejected"]) == (1, [])
    assert stored_events(app) == 1


def test_a_keyless_text_plain_beacon_is_refused_and_stores_nothing(make_app: AppFactory) -> None:
    """Without a key the authorizer would decide (cookies): JSON from this site only."""
    app = admin_app(make_app)
    client = app.test_client()
    body = beacon_body("").replace('"api_key": "", ', "")
    answer = client.post(f"{API}/events", data=body, content_type="text/plain")
    assert answer.status_code == 415
    cross = client.post(
        f"{API}/events", data=body, content_type="text/plain", headers={"Origin": EVIL}
    )
    assert cross.status_code == 403
    assert stored_events(app) == 0
    ok = client.post(f"{API}/events", data=body, content_type="application/json")
    assert ok.status_code == 200 and ok.json["accepted"] == 1


@pytest.mark.usefixtures("cookie_key")
@pytest.mark.parametrize(
    ("headers", "content_type"),
    [
        ({"Origin": EVIL}, "text/plain"),
        ({"Origin": EVIL}, "application/json"),
        ({"Sec-Fetch-Site": "cross-site"}, "text/plain"),
    ],
)
def test_forced_consent_from_another_site_is_refused_and_sets_no_cookie(
    make_app: AppFactory, headers: dict[str, str], content_type: str
) -> None:
    app = make_app()  # no authorizer: consent is public
    answer = app.test_client().post(
        f"{API}/consent",
        data='{"consent": true, "scope_id": "acme"}',
        content_type=content_type,
        headers=headers,
    )
    assert answer.status_code == 403 and answer.json["error"]["code"] == "cross_site_request"
    assert "Set-Cookie" not in answer.headers


@pytest.mark.usefixtures("cookie_key")
def test_consent_from_this_site_sets_the_cookie_and_text_plain_does_not(
    make_app: AppFactory,
) -> None:
    app = make_app()
    client = app.test_client()
    body = '{"consent": true}'
    plain = client.post(f"{API}/consent", data=body, content_type="text/plain")
    assert plain.status_code == 415 and "Set-Cookie" not in plain.headers
    given = client.post(
        f"{API}/consent",
        data=body,
        content_type="application/json",
        headers={"Origin": "http://localhost"},
    )
    assert given.status_code == 200 and given.json["consent"] is True
    assert given.headers["Set-Cookie"].startswith("umetrics_consent=")


# --- CORS for allowed origins -----------------------------------------------------------------


def preflight(app: Flask, path: str, origin: str) -> Any:
    return app.test_client().options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )


BROWSER_PATHS = [
    f"{API}/events",
    f"{API}/identify",
    f"{API}/flags",
    f"{API}/consent",
    f"{API}/analytics/events",
    f"{API}/analytics/identify",
    "/umetrics/v1/events",
    "/umetrics/v1/ping",
]


@pytest.fixture
def cors_app(make_app: AppFactory, cookie_key: None) -> Flask:
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: permission == "ingest")
    return make_app(
        extension,
        UMETRICS_ALLOWED_ORIGINS=f"{FRONT}, https://shop.example.org:8443",
        UMETRICS_ENABLE_TOGO_API=True,
        UMETRICS_ENABLE_OPENMETRICS_API=True,
    )


@pytest.mark.parametrize("path", BROWSER_PATHS)
def test_an_allowed_origin_gets_a_preflight_answer_with_credentials(
    cors_app: Flask, path: str
) -> None:
    answer = preflight(cors_app, path, FRONT)
    assert answer.status_code == 200
    headers = answer.headers
    assert headers["Access-Control-Allow-Origin"] == FRONT
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert headers["Access-Control-Allow-Headers"] == "content-type"
    assert set(headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "OPTIONS", "POST"}
    assert headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in headers["Vary"]


@pytest.mark.parametrize("path", BROWSER_PATHS)
def test_a_disallowed_origin_gets_no_cors_headers(cors_app: Flask, path: str) -> None:
    for origin in (EVIL, "http://app.example.com", "https://app.example.com.evil.example"):
        answer = preflight(cors_app, path, origin)
        assert "Access-Control-Allow-Origin" not in answer.headers, origin
        assert "Access-Control-Allow-Credentials" not in answer.headers, origin


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/experiments/pricing-page/kill",
        f"{API}/keys",
        f"{API}/query/volume",
        f"{API}/persons/x",
    ],
)
def test_management_routes_get_no_cors_even_for_an_allowed_origin(
    cors_app: Flask, path: str
) -> None:
    answer = preflight(cors_app, path, FRONT)
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_an_allowed_front_end_sends_events_sets_consent_and_reads_flags(cors_app: Flask) -> None:
    client = cors_app.test_client()
    with cors_app.app_context():
        key = create_api_key("default", "ingest")
    headers = {"Origin": FRONT, "Sec-Fetch-Site": "same-site"}
    batch = {"api_key": key, "events": [{"event": "signup", "distinct_id": "v1"}]}
    sent = client.post(f"{API}/events", json=batch, headers=headers)
    assert sent.status_code == 200 and sent.json["accepted"] == 1
    assert sent.headers["Access-Control-Allow-Origin"] == FRONT
    assert sent.headers["Access-Control-Expose-Headers"] == "Retry-After"
    consent = client.post(f"{API}/consent", json={"consent": True}, headers=headers)
    assert consent.status_code == 200 and consent.json["consent"] is True
    assert consent.headers["Access-Control-Allow-Origin"] == FRONT
    assert consent.headers["Access-Control-Allow-Credentials"] == "true"
    assert consent.headers["Set-Cookie"].startswith("umetrics_consent=")
    flags = client.get(f"{API}/flags", headers=headers)
    assert flags.status_code == 200 and flags.json == {"flags": {}, "consent": True}
    assert flags.headers["Access-Control-Allow-Origin"] == FRONT
    assert stored_events(cors_app) == 1


def test_error_answers_of_browser_endpoints_carry_cors_for_allowed_origins(
    cors_app: Flask,
) -> None:
    client = cors_app.test_client()
    bad_key = client.post(
        f"{API}/events", json={"api_key": "umk_nope", "events": []}, headers={"Origin": FRONT}
    )
    assert bad_key.status_code == 401
    assert bad_key.headers["Access-Control-Allow-Origin"] == FRONT
    invalid = client.get(f"{API}/flags?keys=a%20b", headers={"Origin": FRONT})
    assert invalid.status_code == 400 and invalid.headers["Access-Control-Allow-Origin"] == FRONT
    refused = client.post(f"{API}/consent", json={"consent": True}, headers={"Origin": EVIL})
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers


def test_open_metrics_keyless_calls_follow_the_origin_rule_get_included(cors_app: Flask) -> None:
    """Every open-metrics route writes, GET included; keyless means the authorizer decides."""
    client = cors_app.test_client()
    q = 'q={"sessionId":"s1","events":[{"name":"opened"}]}'
    cross = client.get(f"/umetrics/v1/events?{q}", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403 and cross.json["error"]["code"] == "cross_site_request"
    evil = client.get(f"/umetrics/v1/events?{q}", headers={"Origin": EVIL})
    assert evil.status_code == 403
    plain = client.post(
        "/umetrics/v1/events",
        data='{"sessionId":"s1","events":[{"name":"opened"}]}',
        content_type="text/plain",
    )
    assert plain.status_code == 415
    assert stored_events(cors_app) == 0
    allowed = client.get(f"/umetrics/v1/events?{q}", headers={"Origin": FRONT})
    assert allowed.status_code == 200 and allowed.get_data(as_text=True) == "ok"
    assert allowed.headers["Access-Control-Allow-Origin"] == FRONT
    with cors_app.app_context():
        key = create_api_key("default", "ingest")
    keyed = client.post(
        "/umetrics/v1/events",
        data=json.dumps({"api_key": key, "sessionId": "s2", "events": [{"name": "opened"}]}),
        content_type="text/plain",
        headers={"Origin": EVIL},
    )
    assert keyed.status_code == 200 and "Access-Control-Allow-Origin" not in keyed.headers
    assert stored_events(cors_app) == 2


def test_without_allowed_origins_nothing_gets_cors(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_ENABLE_OPENMETRICS_API=True)
    for path in BROWSER_PATHS[:4] + BROWSER_PATHS[6:]:
        answer = preflight(app, path, FRONT)
        assert "Access-Control-Allow-Origin" not in answer.headers, path


# --- the setting ------------------------------------------------------------------------------


def test_allowed_origins_are_normalized_like_browsers_write_them() -> None:
    values = resolve_config(
        {
            "UMETRICS_ALLOWED_ORIGINS": "HTTPS://App.Example.com:443/, http://localhost:5173 "
            "https://app.example.com"
        },
        environ={},
    )
    assert values["UMETRICS_ALLOWED_ORIGINS"] == [
        "https://app.example.com",
        "http://localhost:5173",
    ]
    assert resolve_config({}, environ={})["UMETRICS_ALLOWED_ORIGINS"] == []
    listed = resolve_config({"UMETRICS_ALLOWED_ORIGINS": ["http://[::1]:8000"]}, environ={})
    assert listed["UMETRICS_ALLOWED_ORIGINS"] == ["http://[::1]:8000"]


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "https://*.example.com",
        "app.example.com",
        "https://app.example.com/path",
        "https://app.example.com?x=1",
        "ftp://app.example.com",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "null",
    ],
)
def test_a_bad_allowed_origin_stops_start_up_naming_the_key(
    make_app: AppFactory, value: str
) -> None:
    with pytest.raises(
        ConfigurationError, match=r"UMETRICS_ALLOWED_ORIGINS \(from app.config\) is invalid"
    ):
        make_app(UMETRICS_ALLOWED_ORIGINS=value)


# --- the issue's reproduction against the demo app, with a real login session ------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return seeded_demo(tmp_path_factory.mktemp("cross-site-demo"), days=3, users=5)


def demo_admin_client(demo: Flask) -> Any:
    """A browser logged in to the demo as its admin: the session cookie, nothing else."""
    from example_app.auth import find_user

    with demo.app_context():
        admin = find_user("admin@example.com")
        assert admin is not None
        admin_id = admin.id
    client = demo.test_client()
    with client.session_transaction() as session:
        session["user_id"] = admin_id
    return client


def demo_experiment(demo: Flask) -> tuple[str, bool]:
    with demo.app_context():
        experiment = get_experiment("pricing-page", scope_id="acme")
        assert experiment is not None
        return experiment.status, experiment.killed


def test_the_issues_curl_against_the_demo_is_refused_and_json_from_the_site_works(
    demo: Flask,
) -> None:
    client = demo_admin_client(demo)
    assert client.get(f"{API}/experiments?scope_id=acme").status_code == 200  # logged in
    assert demo_experiment(demo) == ("running", False)
    forged = client.post(
        KILL, data=FORGED_BODY, content_type="text/plain", headers={"Origin": EVIL}
    )
    assert forged.status_code == 403 and forged.json["error"]["code"] == "cross_site_request"
    plain = client.post(KILL, data=FORGED_BODY, content_type="text/plain")
    assert plain.status_code == 415
    assert demo_experiment(demo) == ("running", False)
    killed = client.post(KILL, json={"scope_id": "acme"}, headers={"Origin": "http://localhost"})
    assert killed.status_code == 200 and killed.json["killed"] is True
    assert demo_experiment(demo) == ("running", True)


def test_browser_sdks_on_an_allowed_origin_read_the_growthbook_payload(cors_app: Flask) -> None:
    """GrowthBook's browser SDKs fetch the payload from the page's origin with the client key in
    the path: allowed origins may read it, without credentials; others get no CORS headers."""
    with cors_app.app_context():
        client_key = create_api_key("default", "client")
    client = cors_app.test_client()
    for path in (
        f"{API}/growthbook/api/features/{client_key}",
        f"{API}/growthbook/features/{client_key}",
    ):
        answer = client.get(path, headers={"Origin": FRONT})
        assert answer.status_code == 200 and "features" in answer.json
        assert answer.headers["Access-Control-Allow-Origin"] == FRONT
        assert "Access-Control-Allow-Credentials" not in answer.headers
        preflight = client.options(
            path, headers={"Origin": FRONT, "Access-Control-Request-Method": "GET"}
        )
        assert preflight.headers["Access-Control-Allow-Origin"] == FRONT
        assert set(preflight.headers["Access-Control-Allow-Methods"].split(", ")) == {
            "GET",
            "OPTIONS",
        }
        assert "Access-Control-Allow-Credentials" not in preflight.headers
        other = client.get(path, headers={"Origin": "https://evil.example.net"})
        assert other.status_code == 200  # the key is the authority; the page cannot read it
        assert "Access-Control-Allow-Origin" not in other.headers
    bad_key = client.get(f"{API}/growthbook/features/umk_nope", headers={"Origin": FRONT})
    assert bad_key.status_code == 401
    assert bad_key.headers["Access-Control-Allow-Origin"] == FRONT  # the SDK can read the error
    # A write to a payload path stays unanswered for CORS (GET only).
    post = client.options(
        f"{API}/growthbook/features/{client_key}",
        headers={"Origin": FRONT, "Access-Control-Request-Method": "POST"},
    )
    assert "POST" not in post.headers.get("Access-Control-Allow-Methods", "")
