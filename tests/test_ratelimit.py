"""Rate limits of the public endpoints: 429 ``rate_limited`` with ``Retry-After`` past the limit,
a budget per client IP and per key, nothing else limited, and no interference with a host's own
Flask-Limiter."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_umetrics import create_api_key
from flask_umetrics.errors import ConfigurationError
from flask_umetrics.state import current_state

from .conftest import AppFactory

LIMIT = 3
#: (method, path, JSON body) of every rate-limited endpoint; the body may be invalid: a request
#: spends its budget before it is read.
PUBLIC_ENDPOINTS = [
    ("POST", "/umetrics/api/events", {"events": []}),
    ("POST", "/umetrics/api/identify", {"distinct_id": "u1"}),
    ("GET", "/umetrics/api/flags", None),
    ("POST", "/umetrics/api/consent", {"consent": True}),
    ("POST", "/umetrics/api/analytics/events", {"events": []}),
    ("POST", "/umetrics/api/analytics/identify", {"user_id": "u1"}),
    ("POST", "/umetrics/v1/events", {"events": []}),
    ("POST", "/umetrics/v1/setUserId", {"userId": "u1"}),
    ("POST", "/umetrics/v1/setUserProps", {"userId": "u1", "props": {}}),
    ("POST", "/umetrics/v1/createUser", {}),
    ("GET", "/umetrics/v1/ping", None),
]


def _app(make_app: AppFactory, **config: Any) -> Flask:
    settings = {
        "UMETRICS_RATELIMIT_INGEST": f"{LIMIT} per minute",
        "UMETRICS_RATELIMIT_PUBLIC": f"{LIMIT} per minute",
        "UMETRICS_ENABLE_TOGO_API": True,
        "UMETRICS_ENABLE_OPENMETRICS_API": True,
        "SECRET_KEY": "test",
        **config,
    }
    return make_app(**settings)


def _key(app: Flask) -> str:
    with app.app_context():
        return create_api_key("default", "ingest")


def _send(app: Flask, method: str, path: str, body: Any, ip: str, key: str | None = None) -> Any:
    headers = {"X-UMetrics-Key": key} if key else {}
    return app.test_client().open(
        path, method=method, json=body, headers=headers, environ_base={"REMOTE_ADDR": ip}
    )


def _assert_limited(answer: Any) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(answer.headers["Retry-After"]) <= 61


@pytest.mark.parametrize(("method", "path", "body"), PUBLIC_ENDPOINTS)
def test_each_public_endpoint_answers_429_past_its_limit(
    make_app: AppFactory, method: str, path: str, body: Any
) -> None:
    app = _app(make_app)
    key = _key(app)
    for _ in range(LIMIT):
        assert _send(app, method, path, body, "10.0.0.1", key).status_code != 429
    _assert_limited(_send(app, method, path, body, "10.0.0.1", key))
    # Another client IP has its own budget.
    assert _send(app, method, path, body, "10.0.0.2", key).status_code != 429


def test_ingest_endpoints_share_one_budget_and_flags_have_another(make_app: AppFactory) -> None:
    app = _app(make_app)
    key = _key(app)
    for method, path, body in PUBLIC_ENDPOINTS[:2] + PUBLIC_ENDPOINTS[4:5]:
        assert _send(app, method, path, body, "10.0.0.3", key).status_code != 429
    _assert_limited(_send(app, "POST", "/umetrics/v1/events", {"events": []}, "10.0.0.3", key))
    # The anonymous browser endpoints are a separate budget of the same IP.
    assert _send(app, "GET", "/umetrics/api/flags", None, "10.0.0.3").status_code == 200


def test_a_key_has_one_budget_across_client_ips(make_app: AppFactory) -> None:
    app = _app(
        make_app,
        UMETRICS_RATELIMIT_INGEST="1000 per minute",
        UMETRICS_RATELIMIT_PER_KEY="3 per minute",
    )
    key, other = _key(app), _key(app)
    batch = {"events": [{"event": "view", "distinct_id": "a"}]}
    for index in range(3):
        answer = _send(app, "POST", "/umetrics/api/events", batch, f"10.1.0.{index}", key)
        assert answer.status_code == 200, answer.text
    _assert_limited(_send(app, "POST", "/umetrics/api/events", batch, "10.1.0.9", key))
    # ... in the body too (the browser client's sendBeacon carries it there).
    _assert_limited(
        _send(app, "POST", "/umetrics/api/events", {**batch, "api_key": key}, "10.1.0.8")
    )
    assert _send(app, "POST", "/umetrics/api/events", batch, "10.1.0.9", other).status_code == 200


def test_other_routes_are_not_limited(make_app: AppFactory) -> None:
    app = _app(
        make_app, UMETRICS_RATELIMIT_INGEST="1 per minute", UMETRICS_RATELIMIT_PUBLIC="1 per minute"
    )
    client = app.test_client()
    for _ in range(5):
        assert client.get("/umetrics/api/health").status_code == 200
        assert client.get("/umetrics/api/openapi.json").status_code == 200
        assert client.get("/umetrics/api/query/volume").status_code == 401


def test_x_forwarded_for_counts_only_behind_proxy_fix(make_app: AppFactory) -> None:
    app = _app(make_app)
    client = app.test_client()

    def flags(forwarded: str) -> int:
        answer = client.get(
            "/umetrics/api/flags",
            headers={"X-Forwarded-For": forwarded},
            environ_base={"REMOTE_ADDR": "10.2.0.1"},
        )
        return answer.status_code

    # Without ProxyFix a client cannot pick a fresh address per request.
    assert [flags(f"192.0.2.{i}") for i in range(LIMIT + 1)] == [200] * LIMIT + [429]
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    assert [flags("198.51.100.7") for _ in range(LIMIT + 1)] == [200] * LIMIT + [429]
    assert flags("198.51.100.8") == 200


def test_switched_off(make_app: AppFactory) -> None:
    app = _app(make_app, UMETRICS_RATELIMIT_ENABLED=False)
    with app.app_context():
        assert current_state().rate_limiter is None
    assert [
        _send(app, "GET", "/umetrics/api/flags", None, "10.3.0.1").status_code for _ in range(6)
    ] == [200] * 6
    assert "RATELIMIT_ENABLED" not in app.config  # nothing written for a host limiter to read


def test_a_bad_limit_stops_start_up(make_app: AppFactory) -> None:
    with pytest.raises(ConfigurationError, match="UMETRICS_RATELIMIT_INGEST"):
        _app(make_app, UMETRICS_RATELIMIT_INGEST="lots")


def test_the_hosts_own_limiter_keeps_its_limits(make_app: AppFactory) -> None:
    # The host's config for its own limiter does not become ours ...
    app = _app(make_app, RATELIMIT_DEFAULT="1 per minute")
    host = Limiter(get_remote_address, app=app, storage_uri="memory://")

    @app.route("/host")
    @host.limit("2 per minute")
    def host_page() -> str:
        return "host"

    @app.route("/host-exempt")
    @host.exempt
    def host_exempt() -> str:
        return "exempt"

    host.exempt(app.blueprints["umetrics_api"])
    client = app.test_client()
    # ... our endpoints keep our limit (3), not the host's default (1) ...
    statuses = [client.get("/umetrics/api/flags").status_code for _ in range(LIMIT + 1)]
    assert statuses == [200] * LIMIT + [429]
    # ... and the host's routes keep theirs, counted once, answered the host's way.
    assert [client.get("/host").status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/host").mimetype == "text/html"
    assert [client.get("/host-exempt").status_code for _ in range(5)] == [200] * 5


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
def test_workers_share_one_budget_in_redis(make_app: AppFactory) -> None:
    """Two apps (as two gunicorn workers) on one Redis spend one budget per client IP."""
    redis = {"UMETRICS_RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379"}
    first, second = _app(make_app, **redis), _app(make_app, **redis)
    ip = f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"  # fresh counters per run
    assert _send(first, "GET", "/umetrics/api/flags", None, ip).status_code == 200
    assert _send(second, "GET", "/umetrics/api/flags", None, ip).status_code == 200
    assert _send(first, "GET", "/umetrics/api/flags", None, ip).status_code == 200
    _assert_limited(_send(second, "GET", "/umetrics/api/flags", None, ip))
