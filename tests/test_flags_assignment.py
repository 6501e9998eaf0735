"""Assignment, stickiness and consent (docs/flags-experiments.md)."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, jsonify, request
from sqlalchemy import event, func, select

from flask_umetrics import (
    UMetrics,
    create_experiment,
    get_variant,
    identify,
    is_enabled,
    resolve_variant,
    start_experiment,
    stop_experiment,
    update_experiment,
    weighted_bucket,
)
from flask_umetrics.db.tables import assignments, exposures
from flask_umetrics.flags.cookie import decode_cookie

COOKIE = "umetrics_consent"
KEY_V1 = base64.b64encode(bytes(range(32))).decode()
KEY_V2 = base64.b64encode(bytes(range(32, 64))).decode()


@pytest.fixture
def cookie_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "v1")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_v1", KEY_V1)


def flag_app(make_app: Callable[..., Flask], **config: Any) -> Flask:
    """A test app whose subject comes from ``X-User`` and attributes from ``X-Country``."""
    extension = UMetrics()

    @extension.subject_loader
    def subject() -> tuple[str | None, dict[str, Any]]:
        return request.headers.get("X-User"), {"country": request.headers.get("X-Country", "DE")}

    app = make_app(extension, **config)

    @app.get("/variant/<key>")
    def variant(key: str) -> Any:
        return jsonify(variant=get_variant(key), enabled=is_enabled(key))

    @app.get("/many")
    def many() -> Any:
        return jsonify({k: get_variant(k) for k in request.args["keys"].split(",")})

    return app


def experiment(key: str = "pricing", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key": key,
        "variants": [{"key": "control", "weight": 0.5}, {"key": "b", "weight": 0.5}],
        "goal": {"event": "purchase"},
    }
    body.update(extra)
    return body


def running(app: Flask, key: str = "pricing", **extra: Any) -> None:
    with app.app_context():
        create_experiment(experiment(key, **extra))
        start_experiment(key)


def subject_with(variant_index: int, seed: str = "pricing", weights: Any = (0.5, 0.5)) -> str:
    for i in range(10_000):
        candidate = f"user-{i}"
        if weighted_bucket(seed, candidate, list(weights)) == variant_index:
            return candidate
    raise AssertionError("no candidate")


def table_rows(app: Flask, table: Any) -> list[Any]:
    with app.app_context():
        engine = app.extensions["umetrics"].engine
        with engine.connect() as connection:
            return list(connection.execute(select(table).order_by(*table.primary_key.columns)))


def consent_cookie(client: Any) -> str | None:
    cookie = client.get_cookie(COOKIE)
    return cookie.value if cookie is not None else None


# -- consent and cookies -----------------------------------------------------------------------


def test_without_consent_nothing_is_stored_and_no_cookie_is_set(
    make_app: Callable[..., Flask], cookie_keys: None
) -> None:
    app = flag_app(make_app)
    running(app)
    client = app.test_client()
    anonymous = client.get("/variant/pricing")
    assert anonymous.json == {"variant": "control", "enabled": False}
    assert "Set-Cookie" not in anonymous.headers
    user_b = subject_with(1)
    known = client.get("/variant/pricing", headers={"X-User": user_b})
    # A known subject without consent gets the deterministic hash result...
    assert known.json == {"variant": "b", "enabled": True}
    assert "Set-Cookie" not in known.headers
    # ...and nothing is written anywhere.
    assert table_rows(app, assignments) == []
    assert table_rows(app, exposures) == []


def test_anonymous_with_consent_lives_in_the_cookie(
    make_app: Callable[..., Flask], cookie_keys: None
) -> None:
    app = flag_app(make_app)
    running(app)
    client = app.test_client()
    answer = client.post("/umetrics/api/consent", json={"consent": True})
    assert answer.json["consent"] is True and answer.json["cookie"] is True
    first = client.get("/variant/pricing").json["variant"]
    token = consent_cookie(client)
    with app.app_context():
        keyring = app.extensions["umetrics"].cookie_keyring
    cookie = decode_cookie(keyring, token, name=COOKIE, max_age_seconds=10**8, now=int(time.time()))
    assert cookie is not None and cookie.consent
    assert answer.json["anonymous_id"] == cookie.anon_id
    assert cookie.assignments["pricing"].variant == first
    assert first == ["control", "b"][weighted_bucket("pricing", cookie.anon_id, [0.5, 0.5])]
    # No assignment row for anonymous visitors; one exposure under the anonymous id.
    assert table_rows(app, assignments) == []
    rows = table_rows(app, exposures)
    assert [(r.subject_id, r.variant) for r in rows] == [(cookie.anon_id, first)]
    for _ in range(3):
        assert client.get("/variant/pricing").json["variant"] == first
    assert len(table_rows(app, exposures)) == 1


def test_variant_seen_anonymously_survives_login(
    make_app: Callable[..., Flask], cookie_keys: None
) -> None:
    app = flag_app(make_app)
    running(app)
    client = app.test_client()
    client.post("/umetrics/api/consent", json={"consent": True})
    anonymous_variant = client.get("/variant/pricing").json["variant"]
    # A user whose own hash says the OTHER variant logs in.
    user = subject_with(1 if anonymous_variant == "control" else 0)
    assert client.get("/variant/pricing", headers={"X-User": user}).json["variant"] == (
        anonymous_variant
    )
    stored = table_rows(app, assignments)
    assert [(r.subject_id, r.variant, r.source) for r in stored] == [
        (user, anonymous_variant, "cookie")
    ]
    # On another device (no cookie), the stored assignment still wins over the hash.
    other_device = app.test_client()
    other_device.post("/umetrics/api/consent", json={"consent": True})
    assert other_device.get("/variant/pricing", headers={"X-User": user}).json["variant"] == (
        anonymous_variant
    )


def test_a_modified_cookie_byte_is_ignored_and_replaced(
    make_app: Callable[..., Flask], cookie_keys: None
) -> None:
    app = flag_app(make_app)
    running(app)
    client = app.test_client()
    client.post("/umetrics/api/consent", json={"consent": True})
    client.get("/variant/pricing")
    token = consent_cookie(client)
    assert token is not None
    position = len(token) - 5
    tampered = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
    client.set_cookie(COOKIE, tampered)
    answer = client.get("/variant/pricing")
    assert answer.status_code == 200
    # Unreadable: no consent known any more, so the control variant and the cookie is cleared.
    assert answer.json["variant"] == "control"
    assert consent_cookie(client) is None


def test_tampered_cookie_is_replaced_when_consent_is_not_required(
    make_app: Callable[..., Flask], cookie_keys: None
) -> None:
    app = flag_app(make_app, UMETRICS_CONSENT_REQUIRED=False)
    running(app)
    client = app.test_client()
    client.get("/variant/pricing")
    token = consent_cookie(client)
    assert token is not None
    client.set_cookie(COOKIE, token[:-3] + ("x" if token[-3] != "x" else "y") + token[-2:])
    client.get("/variant/pricing")
    replaced = consent_cookie(client)
    assert replaced is not None and replaced != token
    with app.app_context():
        keyring = app.extensions["umetrics"].cookie_keyring
    assert decode_cookie(
        keyring, replaced, name=COOKIE, max_age_seconds=10**8, now=int(time.time())
    )


def test_a_cookie_written_under_v1_is_read_after_rotating_to_v2(
    make_app: Callable[..., Flask], cookie_keys: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = flag_app(make_app)
    running(app)
    client = app.test_client()
    client.post("/umetrics/api/consent", json={"consent": True})
    seen = client.get("/variant/pricing").json["variant"]
    token = consent_cookie(client)
    assert token is not None and token.startswith("v1.")

    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "v2")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_v2", KEY_V2)
    rotated = flag_app(make_app)
    rotated_client = rotated.test_client()
    rotated_client.set_cookie(COOKIE, token)
    assert rotated_client.get("/variant/pricing").json["variant"] == seen
    assert len(table_rows(rotated, exposures)) == 1  # the v1 visitor was not re-exposed
    # The next change to the cookie re-issues it under the current key, assignments kept.
    running(rotated, "second")
    second = rotated_client.get("/variant/second").json["variant"]
    reissued = consent_cookie(rotated_client)
    assert reissued is not None and reissued.startswith("v2.")
    with rotated.app_context():
        keyring = rotated.extensions["umetrics"].cookie_keyring
    cookie = decode_cookie(
        keyring, reissued, name=COOKIE, max_age_seconds=10**8, now=int(time.time())
    )
    assert cookie is not None
    assert {k: a.variant for k, a in cookie.assignments.items()} == {
        "pricing": seen,
        "second": second,
    }


def test_withdrawing_consent_clears_the_cookie(
    make_app: Callable[..., Flask], cookie_keys: None
) -> None:
    app = flag_app(make_app)
    running(app)
    client = app.test_client()
    client.post("/umetrics/api/consent", json={"consent": True})
    client.get("/variant/pricing")
    assert consent_cookie(client) is not None
    answer = client.post("/umetrics/api/consent", json={"consent": False})
    assert answer.json == {"consent": False, "cookie": False, "anonymous_id": None}
    assert consent_cookie(client) is None
    assert client.get("/variant/pricing").json["variant"] == "control"


def test_without_a_cookie_key_anonymous_visitors_get_control(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("UMETRICS_COOKIE_KEY_"):
            monkeypatch.delenv(name)
    app = flag_app(make_app, UMETRICS_CONSENT_REQUIRED=False)
    running(app)
    client = app.test_client()
    answer = client.post("/umetrics/api/consent", json={"consent": True})
    assert answer.json == {"consent": True, "cookie": False, "anonymous_id": None}
    assert client.get("/variant/pricing").json["variant"] == "control"
    assert consent_cookie(client) is None


def test_a_malformed_cookie_key_fails_at_start_up(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask_umetrics import ConfigurationError

    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "v1")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_v1", "not base64!")
    with pytest.raises(ConfigurationError, match="UMETRICS_COOKIE_KEY_v1") as raised:
        make_app()
    assert "not base64!" not in str(raised.value)


def test_dnt_or_gpc_means_no_consent_without_a_cookie(
    make_app: Callable[..., Flask], cookie_keys: None
) -> None:
    app = flag_app(make_app, UMETRICS_CONSENT_REQUIRED=False)
    running(app)
    client = app.test_client()
    answer = client.get("/variant/pricing", headers={"Sec-GPC": "1"})
    assert answer.json["variant"] == "control"
    assert consent_cookie(client) is None
    assert table_rows(app, exposures) == []


# -- stickiness and bucketing --------------------------------------------------------------------


def resolve(app: Flask, subject: str, key: str = "pricing", consent: bool = True) -> Any:
    with app.app_context():
        return resolve_variant(key, subject_id=subject, consent=consent)


def test_changing_weights_keeps_existing_subjects(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    running(app)
    subjects = [f"s{i}" for i in range(200)]
    before = {s: resolve(app, s).variant for s in subjects}
    with app.app_context():
        update_experiment(
            "pricing",
            {"variants": [{"key": "control", "weight": 0.1}, {"key": "b", "weight": 0.9}]},
        )
    after = {s: resolve(app, s) for s in subjects}
    assert {s: r.variant for s, r in after.items()} == before
    assert {r.reason for r in after.values()} == {"sticky"}
    # New subjects follow the new weights: exactly what the hash says under 10/90.
    newcomer = resolve(app, "newcomer-1")
    expected = ["control", "b"][weighted_bucket("pricing", "newcomer-1", [0.1, 0.9])]
    assert (newcomer.variant, newcomer.reason) == (expected, "hash")
    # Without consent nothing was sticky: those subjects follow the new weights.
    moved = [s for s in subjects if before[s] != resolve(app, s, consent=False).variant]
    assert moved == [
        s
        for s in subjects
        if before[s] != ["control", "b"][weighted_bucket("pricing", s, [0.1, 0.9])]
    ]
    assert moved  # some did move under the new weights


def test_bumping_the_bucket_version_rebuckets(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    running(app)
    subjects = [f"s{i}" for i in range(100)]
    for s in subjects:
        resolve(app, s)
    with app.app_context():
        update_experiment(
            "pricing",
            {
                "bucket_version": 2,
                "seed": "pricing-v2",
                "variants": [{"key": "control", "weight": 0.5}, {"key": "b", "weight": 0.5}],
            },
        )
    results = {s: resolve(app, s) for s in subjects}
    assert {r.reason for r in results.values()} == {"hash"}
    assert {s: r.variant for s, r in results.items()} == {
        s: ["control", "b"][weighted_bucket("pricing-v2", s, [0.5, 0.5])] for s in subjects
    }
    rows = table_rows(app, assignments)
    assert sorted({r.bucket_version for r in rows}) == [1, 2]
    assert len(rows) == 200


def test_exposure_is_logged_once_per_subject(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    running(app)
    for _ in range(3):
        resolve(app, "alice")
    resolve(app, "bob", consent=False)
    rows = table_rows(app, exposures)
    assert [(r.subject_id, r.bucket_version) for r in rows] == [("alice", 1)]


def test_status_kill_switch_and_shipping(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    user_b = subject_with(1)
    with app.app_context():
        create_experiment(experiment())
    draft = resolve(app, user_b)
    assert (draft.variant, draft.in_experiment, draft.reason) == ("control", False, "not_running")
    with app.app_context():
        start_experiment("pricing")
    assert resolve(app, user_b).variant == "b"
    from flask_umetrics import set_killed

    with app.app_context():
        set_killed("pricing", True)
    killed = resolve(app, user_b)
    assert (killed.variant, killed.reason) == ("control", "killed")
    with app.app_context():
        set_killed("pricing", False)
        stop_experiment("pricing", shipped_variant="b")
    user_control = subject_with(0)
    shipped = resolve(app, user_control)
    assert (shipped.variant, shipped.in_experiment, shipped.reason) == ("b", False, "shipped")
    assert [r.subject_id for r in table_rows(app, exposures)] == [user_b]


def test_targeting_and_namespaces(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    running(app, "de-only", conditions={"country": {"$in": ["DE", "AT"]}})
    with app.app_context():
        in_de = resolve_variant(
            "de-only", subject_id="x1", consent=False, attributes={"country": "DE"}
        )
        in_us = resolve_variant(
            "de-only", subject_id="x1", consent=False, attributes={"country": "US"}
        )
    assert in_de.in_experiment and in_de.reason == "hash"
    assert (in_us.variant, in_us.in_experiment, in_us.reason) == ("control", False, "targeting")
    running(app, "left", namespace={"name": "checkout", "start": 0.0, "end": 0.5})
    running(app, "right", namespace={"name": "checkout", "start": 0.5, "end": 1.0})
    both = 0
    for i in range(300):
        left = resolve(app, f"n{i}", "left", consent=False).in_experiment
        right = resolve(app, f"n{i}", "right", consent=False).in_experiment
        assert left != right  # exactly one of the two mutually exclusive experiments
        both += left
    from flask_umetrics.flags.hashing import in_namespace  # checked against GrowthBook's

    assert both == sum(in_namespace(f"n{i}", "checkout", 0.0, 0.5) for i in range(300))
    assert 0 < both < 300


def test_one_sticky_query_for_all_flags_of_a_request(make_app: Callable[..., Flask]) -> None:
    app = flag_app(make_app, UMETRICS_CONSENT_REQUIRED=False)
    for key in ("a", "b", "c", "d"):
        running(app, key)
    client = app.test_client()
    client.get("/many?keys=a")  # warm the definition cache
    statements: list[str] = []
    engine = app.extensions["umetrics"].engine

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        answer = client.get("/many?keys=a,b,c,d,a,unknown", headers={"X-User": "carol"})
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert answer.status_code == 200
    reads = [
        s for s in statements if "umetrics_assignments" in s and s.lstrip().startswith("SELECT")
    ]
    assert len(reads) == 1
    # Everything served is written in one transaction after the response: 4 assignments.
    assert len(table_rows(app, assignments)) == 4


def test_definitions_are_reloaded_in_other_processes(make_app: Callable[..., Flask]) -> None:
    worker_a = make_app(UMETRICS_FLAGS_REFRESH_SECONDS=0)
    worker_b = make_app(UMETRICS_FLAGS_REFRESH_SECONDS=0)
    running(worker_a)
    user_b = subject_with(1)
    assert resolve(worker_b, user_b, consent=False).variant == "b"
    loads = worker_b.extensions["umetrics"].flag_cache.loads
    resolve(worker_b, user_b, consent=False)
    assert worker_b.extensions["umetrics"].flag_cache.loads == loads  # generation unchanged
    with worker_a.app_context():
        stop_experiment("pricing")
    assert resolve(worker_b, user_b, consent=False).variant == "control"


def test_identify_after_anonymous_exposure_counts_one_person(
    make_app: Callable[..., Flask], cookie_keys: None
) -> None:
    app = flag_app(make_app)
    running(app)
    client = app.test_client()
    client.post("/umetrics/api/consent", json={"consent": True})
    client.get("/variant/pricing")
    (anon,) = [r.subject_id for r in table_rows(app, exposures)]
    client.get("/variant/pricing", headers={"X-User": "dave"})
    with app.app_context():
        identify("dave", anon_id=anon)
        engine = app.extensions["umetrics"].engine
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(exposures)).scalar() == 2
        from flask_umetrics import experiment_results, get_experiment

        found = get_experiment("pricing")
        assert found is not None
        result = experiment_results(found)
    assert sum(v["exposures"] for v in result["variants"]) == 1


def test_schedule_window(make_app: Callable[..., Flask]) -> None:
    from datetime import timedelta

    from flask_umetrics.db.types import utcnow

    app = make_app()
    now = utcnow()
    user_b = subject_with(1, seed="later")
    running(app, "later", start_at=(now + timedelta(days=1)).isoformat())
    running(app, "over", stop_at=(now - timedelta(seconds=1)).isoformat(),
            start_at=(now - timedelta(days=2)).isoformat())  # fmt: skip
    running(app, "now", start_at=(now - timedelta(days=1)).isoformat(),
            stop_at=(now + timedelta(days=1)).isoformat())  # fmt: skip
    later = resolve(app, user_b, "later")
    assert (later.variant, later.reason) == ("control", "scheduled")
    assert resolve(app, user_b, "over").reason == "not_running"
    assert resolve(app, "someone", "now").reason == "hash"


def test_segment_membership_targeting(make_app: Callable[..., Flask]) -> None:
    from flask_umetrics import set_person_properties
    from flask_umetrics.queries.segments import save_segment

    app = make_app()
    with app.app_context():
        set_person_properties("pro-user", {"plan": "pro"})
        set_person_properties("free-user", {"plan": "free"})
        save_segment("pros", filters=[{"key": "plan", "op": "eq", "value": "pro"}])
        save_segment("listed", distinct_ids=["free-user"])
    running(app, "beta", conditions={"$inSegment": "pros"})
    running(app, "not-listed", conditions={"$notInSegment": "listed"})
    assert resolve(app, "pro-user", "beta", consent=False).in_experiment
    assert resolve(app, "free-user", "beta", consent=False).reason == "targeting"
    assert resolve(app, "stranger", "beta", consent=False).reason == "targeting"
    assert resolve(app, "free-user", "not-listed", consent=False).reason == "targeting"
    assert resolve(app, "pro-user", "not-listed", consent=False).in_experiment
