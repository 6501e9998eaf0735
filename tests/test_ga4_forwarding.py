"""Scheduled GA4 forwarding: stored events go to the (fake) Measurement Protocol once each.

Every test runs on SQLite and PostgreSQL with events stored through ``track`` and a GA4
connection whose MP secret is stored encrypted, exactly as provisioning leaves it.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert, select, update

from flask_umetrics import create_api_key, flush, set_person_properties
from flask_umetrics import track as track_event
from flask_umetrics.db.tables import events, ga4_connections
from flask_umetrics.db.types import utcnow
from flask_umetrics.events.validation import to_micros
from flask_umetrics.ga4 import connections as ga4
from flask_umetrics.ga4 import forwarding, measurement_protocol
from flask_umetrics.ga4.forwarding import (
    SKIP_NO_CONSENT,
    SKIP_TOO_OLD,
    ForwardResult,
    forward_all,
    forward_scope,
)
from flask_umetrics.ga4.measurement_protocol import MPValidationMessage, pseudonymous_client_id
from flask_umetrics.scheduler.jobs import configured_jobs
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .ga4_env import use_keys
from .ga4_fake_mp import FakeMeasurementProtocol, validate

SCOPE = "site-a"
MID = "G-FWD12345"
SECRET = "mp-s3cr3t_Value-42"
FORWARDED = "purchase,sign_up,session_start"
API = "/umetrics/api"


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeMeasurementProtocol]:
    with FakeMeasurementProtocol() as server:
        yield server


ForwardApp = Callable[..., Flask]


@pytest.fixture
def forward_app(
    make_app: AppFactory, fake: FakeMeasurementProtocol, monkeypatch: pytest.MonkeyPatch
) -> ForwardApp:
    """An app forwarding ``FORWARDED`` to the fake, with encryption key k1 in the environment."""
    use_keys(monkeypatch, "k1", k1=b"f" * 32)

    def build(**config: Any) -> Flask:
        settings: dict[str, Any] = {
            "UMETRICS_DEFAULT_SCOPE": SCOPE,
            "UMETRICS_GA4_FORWARD_EVENTS": FORWARDED,
            "UMETRICS_GA4_MP_ENDPOINT": fake.base_url,
            "UMETRICS_GA4_FORWARD_SCHEDULE": "off",
        }
        settings.update(config)
        return make_app(**settings)

    return build


def connect(scope: str = SCOPE, *, measurement_id: str | None = MID, secret: bool = True) -> None:
    """A connection as provisioning leaves it: property, web stream, encrypted MP secret."""
    now = utcnow()
    with current_state().engine.begin() as db:
        db.execute(
            insert(ga4_connections).values(
                scope_id=scope,
                auth_kind="service_account",
                credentials_encrypted="not used by forwarding",
                connected_by="test",
                connected_at=now,
                updated_at=now,
            )
        )
    ga4.set_property(scope, "123456", stream_id="987", measurement_id=measurement_id)
    if secret:
        ga4.set_mp_secret(scope, SECRET)


def track(name: str, **options: Any) -> None:
    """An event of a visitor who consented (as browser ingestion records it): forwarding is
    opt-in, so the tests about delivery track consenting visitors."""
    properties = {"$consent": True, **(options.pop("properties", None) or {})}
    track_event(name, properties=properties, **options)


def stored_watermark(scope: str = SCOPE) -> int | None:
    with current_state().engine.connect() as db:
        value = db.execute(
            select(ga4_connections.c.mp_forwarded_through).where(
                ga4_connections.c.scope_id == scope
            )
        ).scalar()
    return None if value is None else int(value)


def event_ids(name: str | None = None) -> list[int]:
    query = select(events.c.id).order_by(events.c.id)
    if name is not None:
        query = query.where(events.c.event == name)
    with current_state().engine.connect() as db:
        return [int(row.id) for row in db.execute(query)]


def sent_events(fake: FakeMeasurementProtocol) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(r.body["client_id"], r.body["events"]) for r in fake.requests]


def client(distinct_id: str) -> str:
    return pseudonymous_client_id(SCOPE, distinct_id)


def counts(result: ForwardResult) -> tuple[int, int, dict[str, int], int]:
    return result.sent, result.failed, result.skipped, result.remaining


def test_sends_selected_events_in_batches_once_then_only_new_ones(
    forward_app: ForwardApp, fake: FakeMeasurementProtocol
) -> None:
    app = forward_app()
    base = utcnow().replace(microsecond=0) - timedelta(hours=2)
    with app.app_context():
        connect()
        for i in range(60):
            track(
                "purchase",
                distinct_id="user-1",
                properties={"value": i, "currency": "EUR"},
                timestamp=base + timedelta(seconds=i),
            )
            if i % 10 == 0:
                track("page_view", distinct_id="user-1", timestamp=base + timedelta(seconds=i))
        track("signup_started", distinct_id="user-2", timestamp=base)
        flush()
        purchases = event_ids("purchase")

        first = forward_scope(SCOPE)
        assert counts(first) == (60, 0, {}, 0)
        assert (first.requests, first.watermark, first.reason) == (3, purchases[-1], None)
        assert stored_watermark() == purchases[-1]
        assert [len(r.body["events"]) for r in fake.requests] == [25, 25, 10]
        assert all(r.path == "/mp/collect" for r in fake.requests)
        assert all(r.query == {"measurement_id": MID, "api_secret": SECRET} for r in fake.requests)
        assert {r.body["client_id"] for r in fake.requests} == {client("user-1")}
        assert client("user-1") not in ("user-1", "") and len(client("user-1")) == 32
        sent = [event for _, batch in sent_events(fake) for event in batch]
        assert [e["params"]["value"] for e in sent] == list(range(60))
        assert sent[7] == {
            "name": "purchase",
            "params": {"value": 7, "currency": "EUR", "engagement_time_msec": 1},
            "timestamp_micros": to_micros(base + timedelta(seconds=7)),
        }

        again = forward_scope(SCOPE)
        assert counts(again) == (0, 0, {}, 0)
        assert (again.requests, again.watermark, len(fake.requests)) == (0, purchases[-1], 3)

        track("sign_up", distinct_id="user-3", properties={"method": "google"})
        track("purchase", distinct_id="user-1", properties={"value": 60})
        track("page_view", distinct_id="user-3")
        flush()
        third = forward_scope(SCOPE)
        assert counts(third) == (2, 0, {}, 0)
        assert [(c, [e["name"] for e in batch]) for c, batch in sent_events(fake)[3:]] == [
            (client("user-3"), ["sign_up"]),
            (client("user-1"), ["purchase"]),
        ]
        assert stored_watermark() == event_ids("purchase")[-1]
        assert counts(forward_scope(SCOPE)) == (0, 0, {}, 0)
        assert len(fake.requests) == 5


def test_limit_leaves_the_rest_for_the_next_run(
    forward_app: ForwardApp, fake: FakeMeasurementProtocol
) -> None:
    app = forward_app()
    with app.app_context():
        connect()
        for i in range(30):
            track("purchase", distinct_id=f"user-{i % 2}", properties={"value": i})
        flush()
        ids = event_ids()
        first = forward_scope(SCOPE, limit=12)
        assert counts(first) == (12, 0, {}, 18)
        assert first.watermark == ids[11] == stored_watermark()
        second = forward_scope(SCOPE)
        assert counts(second) == (18, 0, {}, 0)
    values = sorted(e["params"]["value"] for _, batch in sent_events(fake) for e in batch)
    assert values == list(range(30))


def test_invalid_events_are_reported_once_and_private_properties_never_leave(
    forward_app: ForwardApp, fake: FakeMeasurementProtocol
) -> None:
    app = forward_app()
    with app.app_context():
        connect()
        track("purchase", distinct_id="u1", properties={"value": 1})
        track("purchase", distinct_id="u1", properties={"note": "x" * 101}, uuid="too-long")
        track("session_start", distinct_id="u2", uuid="reserved")
        track(
            "sign_up",
            distinct_id="u2",
            properties={
                "method": "email",
                "email": "ann@example.com",
                "$ip": "10.0.0.1",
                "$current_url": "https://example.com/join",
            },
        )
        flush()
        ids = event_ids()
        result = forward_scope(SCOPE)
        # The over-long parameter costs only itself; the reserved event name costs the event.
        assert counts(result) == (3, 0, {"invalid: name (NAME_RESERVED)": 1}, 0)
        assert [(e.event_id, e.uuid, e.event) for e in result.invalid] == [
            (ids[2], "reserved", "session_start"),
        ]
        assert result.invalid[0].messages == (
            MPValidationMessage("name", "event name 'session_start' is reserved", "NAME_RESERVED"),
        )
        assert result.dropped == {"params.note (VALUE_OUT_OF_BOUNDS)": 1}
        assert result.watermark == ids[-1] == stored_watermark()
        assert [
            (c, [(e["name"], e["params"]) for e in batch]) for c, batch in sent_events(fake)
        ] == [
            (
                client("u1"),
                [
                    ("purchase", {"value": 1, "engagement_time_msec": 1}),
                    ("purchase", {"engagement_time_msec": 1}),
                ],
            ),
            (client("u2"), [("sign_up", {"method": "email", "engagement_time_msec": 1})]),
        ]
        # Not tried again: the watermark is past them.
        assert counts(forward_scope(SCOPE)) == (0, 0, {}, 0)
        assert len(fake.requests) == 2
        assert result.to_dict()["adjusted"][0] == {
            "event_id": ids[1],
            "uuid": "too-long",
            "event": "purchase",
            "messages": [
                {
                    "fieldPath": "params.note",
                    "description": "is 101 characters long; at most 100 are allowed",
                    "validationCode": "VALUE_OUT_OF_BOUNDS",
                }
            ],
        }


def test_only_persons_with_recorded_consent_are_forwarded(
    forward_app: ForwardApp, fake: FakeMeasurementProtocol
) -> None:
    app = forward_app()
    with app.app_context():
        connect()
        set_person_properties("refuser", set={"$consent": False})
        set_person_properties("agreer", set={"$consent": True, "$ad_user_data": "granted"})
        track_event("purchase", distinct_id="refuser", properties={"value": 1})
        track_event("purchase", distinct_id="agreer", properties={"value": 2})
        track_event("purchase", distinct_id="agreer", properties={"value": 3, "$consent": False})
        track_event("purchase", distinct_id="anon", properties={"value": 4, "$consent": True})
        track_event("purchase", distinct_id="anon", properties={"value": 5, "$consent": "false"})
        # Nothing recorded (the opt-out default): not forwarded.
        track_event("purchase", distinct_id="anon", properties={"value": 6})
        track_event("purchase", distinct_id="nobody", properties={"value": 7})
        flush()
        result = forward_scope(SCOPE)
        assert counts(result) == (2, 0, {SKIP_NO_CONSENT: 5}, 0)
        assert result.watermark == event_ids()[-1]
    assert [(r.body["client_id"], r.body["consent"]) for r in fake.requests] == [
        (client("agreer"), {"ad_user_data": "GRANTED", "ad_personalization": "DENIED"}),
        (client("anon"), {"ad_user_data": "DENIED", "ad_personalization": "DENIED"}),
    ]
    assert [[e["params"]["value"] for e in batch] for _, batch in sent_events(fake)] == [[2], [4]]


def test_events_older_than_72_hours_are_skipped_without_a_request(
    forward_app: ForwardApp, fake: FakeMeasurementProtocol
) -> None:
    app = forward_app()
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        connect()
        for days in (10, 9, 4):
            track("purchase", distinct_id="u1", timestamp=now - timedelta(days=days))
        track("purchase", distinct_id="u1", properties={"value": 1}, timestamp=now)
        # An import stores an old event after a fresh one: skipped on its own, as invalid.
        track("purchase", distinct_id="u1", uuid="imported", timestamp=now - timedelta(days=5))
        track("purchase", distinct_id="u1", properties={"value": 2}, timestamp=now)
        flush()
        ids = event_ids()
        result = forward_scope(SCOPE, now=now + timedelta(minutes=1))
        assert counts(result) == (
            2,
            0,
            {SKIP_TOO_OLD: 3, "invalid: timestamp (VALUE_OUT_OF_BOUNDS)": 1},
            0,
        )
        assert [e.event_id for e in result.invalid] == [ids[4]]
        assert result.watermark == ids[-1] == stored_watermark()
    assert [[e["params"] for e in batch] for _, batch in sent_events(fake)] == [
        [{"value": 1, "engagement_time_msec": 1}, {"value": 2, "engagement_time_msec": 1}]
    ]


def test_a_server_error_keeps_the_watermark_so_the_next_run_sends_again(
    forward_app: ForwardApp, fake: FakeMeasurementProtocol
) -> None:
    app = forward_app()
    with app.app_context():
        connect()
        for i in range(10):
            track("purchase", distinct_id="u1", properties={"value": i})
        flush()
        fake.fail_next(503, times=3)
        sleeps = Sleeps()
        failed = forward_scope(SCOPE, sleep=sleeps)
        assert counts(failed) == (0, 10, {}, 10)
        assert failed.errors == ["payload 0: HTTP 503"]
        assert (failed.watermark, stored_watermark(), failed.requests) == (None, None, 3)
        assert sleeps.calls == [0.5, 1.0]
        retried = forward_scope(SCOPE)
        assert counts(retried) == (10, 0, {}, 0)
        assert retried.watermark == event_ids()[-1]
    assert [len(r.body["events"]) for r in fake.requests] == [10, 10, 10, 10]
    assert [e["params"]["value"] for e in fake.requests[-1].body["events"]] == list(range(10))


def test_the_watermark_stops_before_the_first_event_ga4_did_not_take(
    forward_app: ForwardApp, fake: FakeMeasurementProtocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = forward_app()
    real_post = measurement_protocol._post

    def refuse_u2(url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        if json.loads(body)["client_id"] == client("u2"):
            return 500, b""
        return real_post(url, body, timeout)

    with app.app_context():
        connect()
        for distinct_id in ("u1", "u1", "u1", "u2", "u2", "u1", "u3"):
            track("purchase", distinct_id=distinct_id)
        flush()
        ids = event_ids()
        monkeypatch.setattr(measurement_protocol, "_post", refuse_u2)
        partial = forward_scope(SCOPE, sleep=Sleeps())
        # u1's four events went out; u2's failed; u3 waits. Events up to ids[2] are done.
        assert counts(partial) == (4, 2, {}, 4)
        assert partial.watermark == ids[2] == stored_watermark()
        monkeypatch.setattr(measurement_protocol, "_post", real_post)
        rest = forward_scope(SCOPE)
        assert counts(rest) == (4, 0, {}, 0)
    # At least once: u1's event after the failure (ids[5]) is sent a second time.
    assert [(c, len(batch)) for c, batch in sent_events(fake)] == [
        (client("u1"), 4),
        (client("u2"), 2),
        (client("u1"), 1),
        (client("u3"), 1),
    ]


def test_scopes_that_cannot_forward_say_why(
    forward_app: ForwardApp, fake: FakeMeasurementProtocol
) -> None:
    app = forward_app()
    with app.app_context():
        connect("no-secret", secret=False)
        connect("no-stream", measurement_id=None)
        for scope in ("no-secret", "no-stream", "unconnected"):
            track("purchase", distinct_id="u1", scope_id=scope)
        flush()
        reasons = {
            scope: (result.reason, result.remaining, result.watermark)
            for scope in ("no-secret", "no-stream", "unconnected")
            for result in [forward_scope(scope)]
        }
        assert reasons == {
            "no-secret": (
                "no Measurement Protocol secret: provision the property (POST /ga4/provision) "
                "to create one",
                1,
                None,
            ),
            "no-stream": ("the linked property has no web stream measurement id", 1, None),
            "unconnected": ("no GA4 connection", 1, None),
        }
        assert [(r.scope_id, r.reason is None) for r in forward_all()] == [
            ("no-secret", False),
            ("no-stream", False),
        ]
    assert fake.requests == []
    unselected = forward_app(UMETRICS_GA4_FORWARD_EVENTS=" , ")
    with unselected.app_context():
        assert forward_scope(SCOPE).reason == (
            "UMETRICS_GA4_FORWARD_EVENTS is empty: no event is selected"
        )


def test_dry_run_asks_the_validation_server_and_keeps_the_watermark(
    forward_app: ForwardApp, fake: FakeMeasurementProtocol
) -> None:
    app = forward_app()
    with app.app_context():
        connect()
        for i in range(3):
            track("purchase", distinct_id="u1", properties={"value": i})
        track("purchase", distinct_id="u1", properties={"value": [1]})
        flush()
        dry = forward_scope(SCOPE, dry_run=True)
        # The list value is left out; the event goes without it.
        assert counts(dry) == (4, 0, {}, 4)
        assert dry.dropped == {"params.value (VALUE_INVALID)": 1}
        assert (dry.dry_run, dry.watermark, stored_watermark()) == (True, None, None)
        assert [r.path for r in fake.requests] == ["/debug/mp/collect"]
        real = forward_scope(SCOPE)
        assert counts(real) == (4, 0, {}, 0)
        assert real.dropped == {"params.value (VALUE_INVALID)": 1}
        assert fake.requests[-1].body["events"][-1]["params"] == {"engagement_time_msec": 1}
    assert [r.path for r in fake.requests] == ["/debug/mp/collect", "/mp/collect"]


def test_cli_prints_counts_and_the_secret_never_shows(
    forward_app: ForwardApp, fake: FakeMeasurementProtocol, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = forward_app()
    with app.app_context():
        connect()
        connect("site-b", secret=False)
        for i in range(27):
            track("purchase", distinct_id="u1", properties={"value": i})
        track("purchase", distinct_id="u1", properties={"$consent": False})
        track("sign_up", distinct_id="u2", properties={"method": "x" * 120})
        track("purchase", distinct_id="u1", scope_id="site-b")
        flush()
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["umetrics", "ga4", "forward", "--scope", SCOPE, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines() == [
        "site-a (dry run): valid 28, failed 0, skipped 1, remaining 29",
        f"  skipped 1: {SKIP_NO_CONSENT}",
        "  parameter left out 1x: params.method (VALUE_OUT_OF_BOUNDS)",
    ]
    fake.fail_next(500, times=3)
    failing = runner.invoke(args=["umetrics", "ga4", "forward", "--scope", SCOPE])
    assert failing.exit_code == 1
    assert failing.output.splitlines() == [
        "site-a: sent 2, failed 25, skipped 0, remaining 29",
        "  error: payload 0: HTTP 500",
    ]
    done = runner.invoke(args=["umetrics", "ga4", "forward"])
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [
        "site-a: sent 28, failed 0, skipped 1, remaining 0",
        f"  skipped 1: {SKIP_NO_CONSENT}",
        "  parameter left out 1x: params.method (VALUE_OUT_OF_BOUNDS)",
        "site-b: not forwarded: no Measurement Protocol secret: provision the property "
        "(POST /ga4/provision) to create one; remaining 1",
    ]
    missing = runner.invoke(args=["umetrics", "ga4", "forward", "--scope", "site-b"])
    assert missing.exit_code == 1
    assert len(fake.requests) == 3 + (3 + 1) + 3  # dry run, failing run, retry run
    texts = [dry.output, failing.output, done.output, missing.output]
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    assert any("api_secret=REDACTED" in text for text in texts)
    assert all(SECRET not in text for text in texts)


def test_the_ga4_forward_job(forward_app: ForwardApp, fake: FakeMeasurementProtocol) -> None:
    scheduled = forward_app(UMETRICS_GA4_FORWARD_SCHEDULE="every 5m")
    state = scheduled.extensions["umetrics"]
    jobs = {job.key: job for job in configured_jobs(state)}
    assert list(jobs) == [f"snapshot:{SCOPE}", "prune", "ga4-forward"]
    assert jobs["ga4-forward"].schedule.interval_seconds == 300
    with scheduled.app_context():
        connect()
        track("purchase", distinct_id="u1", properties={"value": 1})
        flush()
        summary = jobs["ga4-forward"].run(datetime(2026, 1, 1))
    assert [(r["scope_id"], r["sent"], r["remaining"]) for r in summary["results"]] == [
        (SCOPE, 1, 0)
    ]
    assert len(fake.requests) == 1
    off = forward_app(UMETRICS_GA4_FORWARD_SCHEDULE="off")
    unselected = forward_app(
        UMETRICS_GA4_FORWARD_EVENTS="", UMETRICS_GA4_FORWARD_SCHEDULE="1 * * * *"
    )
    for app in (off, unselected):
        assert "ga4-forward" not in [job.key for job in configured_jobs(app.extensions["umetrics"])]
    assert scheduled.config["UMETRICS_GA4_FORWARD_SCHEDULE"] == "every 5m"


def test_a_concurrent_run_is_never_moved_backwards(
    forward_app: ForwardApp, fake: FakeMeasurementProtocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = forward_app()
    real_page = forwarding._page

    def page_then_other_run(*args: Any) -> Any:
        rows = real_page(*args)
        with current_state().engine.begin() as db:  # another run finished meanwhile
            db.execute(update(ga4_connections).values(mp_forwarded_through=rows[-1].id + 100))
        return rows

    with app.app_context():
        connect()
        for i in range(3):
            track("purchase", distinct_id="u1", properties={"value": i})
        flush()
        monkeypatch.setattr(forwarding, "_page", page_then_other_run)
        result = forward_scope(SCOPE)
        assert result.errors == ["another forwarding run moved the watermark; stopped"]
        assert (result.sent, result.remaining) == (3, 0)
        assert result.watermark == event_ids()[-1] + 100 == stored_watermark()
    assert len(fake.requests) == 1


def test_browser_events_with_recorded_consent_are_forwarded_as_the_gtag_user(
    forward_app: ForwardApp, fake: FakeMeasurementProtocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The browser's path: the consent cookie (POST /api/consent) is recorded on the events the
    browser sends, with its ``_ga`` cookie; a visitor without a recorded choice is not sent."""
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "c1")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_c1", base64.b64encode(b"c" * 32).decode())
    app = forward_app(UMETRICS_CONSENT_REQUIRED=False)
    with app.app_context():
        connect()
        key = create_api_key(SCOPE, "ingest")
    headers = {"X-UMetrics-Key": key, "Origin": "http://localhost"}

    def purchase(distinct_id: str, value: int) -> dict[str, Any]:
        return {
            "event": "purchase",
            "distinct_id": distinct_id,
            "session_id": f"sess-{distinct_id}",
            "properties": {"value": value, "currency": "EUR", "items": [{"item_id": "SKU_1"}]},
        }

    agreed = app.test_client()
    agreed.set_cookie("_ga", "GA1.1.1234567890.1717000000")
    assert agreed.post(f"{API}/consent", json={"consent": True}).json["cookie"] is True
    answer = agreed.post(f"{API}/events", json={"events": [purchase("ann", 1)]}, headers=headers)
    assert answer.status_code == 200 and answer.json["accepted"] == 1
    # Not asked (consent not required, so stored): no recorded consent, not forwarded.
    undecided = app.test_client()
    undecided.set_cookie("_ga", "GA1.1.999.1")
    answer = undecided.post(f"{API}/events", json={"events": [purchase("bob", 2)]}, headers=headers)
    assert answer.status_code == 200 and answer.json["accepted"] == 1
    with app.app_context():
        with current_state().engine.connect() as db:
            stored = {
                row.distinct_id: row.properties
                for row in db.execute(select(events.c.distinct_id, events.c.properties))
            }
        assert stored["ann"]["$consent"] is True
        assert stored["ann"]["$ga_client_id"] == "GA1.1.1234567890.1717000000"
        assert "$consent" not in stored["bob"] and "$ga_client_id" not in stored["bob"]
        result = forward_scope(SCOPE)
        assert counts(result) == (1, 0, {SKIP_NO_CONSENT: 1}, 0)
    (request,) = fake.requests
    assert request.body == {
        "client_id": "1234567890.1717000000",
        "consent": {"ad_user_data": "DENIED", "ad_personalization": "DENIED"},
        "events": [
            {
                "name": "purchase",
                "params": {
                    "value": 1,
                    "currency": "EUR",
                    "items": [{"item_id": "SKU_1"}],
                    "session_id": "sess-ann",
                    "engagement_time_msec": 1,
                },
                "timestamp_micros": request.body["events"][0]["timestamp_micros"],
            }
        ],
    }
    assert validate(request.body) == []
