"""GA4 Measurement Protocol forwarding against a local fake collect / debug server."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from flask_umetrics.errors import ValidationError
from flask_umetrics.events.validation import to_micros
from flask_umetrics.ga4.measurement_protocol import (
    MeasurementProtocolError,
    MeasurementProtocolForwarder,
    MPEventInvalid,
    MPValidationMessage,
    SkippedEvent,
    build_payloads,
    gtag_client_id,
    prepare_mp_event,
    pseudonymous_client_id,
    redact_url,
    send,
    to_mp_event,
)

from .ga4_fake_mp import FakeMeasurementProtocol, validate

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=timezone.utc)
NOW_MICROS = to_micros(NOW)
MID = "G-TEST12345"
SECRET = "s3cr3t-API-k3y_value"


@pytest.fixture
def fake() -> Iterator[FakeMeasurementProtocol]:
    with FakeMeasurementProtocol() as server:
        yield server


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def stored(
    name: str, distinct_id: str = "user-1", minutes_ago: int = 5, **properties: Any
) -> dict[str, Any]:
    return {
        "uuid": f"{name}-{minutes_ago}",
        "event": name,
        "distinct_id": distinct_id,
        "ts": NOW_MICROS - minutes_ago * 60_000_000,
        "properties": properties,
    }


def forwarder(fake: FakeMeasurementProtocol, **options: Any) -> MeasurementProtocolForwarder:
    options.setdefault("sleep", Sleeps())
    return MeasurementProtocolForwarder(
        measurement_id_for_scope={"default": MID}.get,
        api_secret_for_scope={"default": SECRET}.get,
        event_names="sign_up, purchase,,",
        endpoint=fake.base_url,
        clock=lambda: NOW,
        **options,
    )


# -- events ------------------------------------------------------------------------------------


def test_to_mp_event_exact_shape() -> None:
    event = to_mp_event(
        "purchase",
        {"currency": "EUR", "value": 19.5, "items_count": 2},
        NOW - timedelta(hours=1),
        now=NOW,
    )
    assert event == {
        "name": "purchase",
        "params": {"currency": "EUR", "value": 19.5, "items_count": 2},
        "timestamp_micros": NOW_MICROS - 3_600_000_000,
    }
    # Stored events carry microseconds; no timestamp means "now" on Google's side.
    assert to_mp_event("sign_up", None, NOW_MICROS, now=NOW)["timestamp_micros"] == NOW_MICROS
    assert to_mp_event("sign_up", {}, None) == {"name": "sign_up", "params": {}}


@pytest.mark.parametrize(
    ("name", "properties", "expected"),
    [
        (
            "1st_purchase",
            {},
            [
                (
                    "name",
                    "event name '1st_purchase' must start with a letter and use only letters, "
                    "digits and underscores",
                    "NAME_INVALID",
                )
            ],
        ),
        (
            "sign-up",
            {},
            [
                (
                    "name",
                    "event name 'sign-up' must start with a letter and use only letters, "
                    "digits and underscores",
                    "NAME_INVALID",
                )
            ],
        ),
        (
            "a" * 41,
            {},
            [
                (
                    "name",
                    f"event name '{'a' * 40}'… is longer than 40 characters",
                    "NAME_INVALID",
                )
            ],
        ),
        (
            "google_signup",
            {},
            [
                (
                    "name",
                    "event name 'google_signup' uses a reserved prefix (google_, ga_, firebase_)",
                    "NAME_RESERVED",
                )
            ],
        ),
        (
            "session_start",
            {},
            [("name", "event name 'session_start' is reserved", "NAME_RESERVED")],
        ),
        (
            "signup",
            {"ga_session": "x", "firebase_conversion": 1, "plan": "p" * 101, "tags": ["a"]},
            [
                (
                    "params.ga_session",
                    "parameter name 'ga_session' uses a reserved prefix (google_, ga_, firebase_)",
                    "NAME_RESERVED",
                ),
                (
                    "params.firebase_conversion",
                    "parameter name 'firebase_conversion' uses a reserved prefix "
                    "(google_, ga_, firebase_)",
                    "NAME_RESERVED",
                ),
                (
                    "params.plan",
                    "is 101 characters long; at most 100 are allowed",
                    "VALUE_OUT_OF_BOUNDS",
                ),
                (
                    "params.tags",
                    "must be a string, a number or a boolean, got list",
                    "VALUE_INVALID",
                ),
            ],
        ),
        (
            "signup",
            {f"p{i}": i for i in range(26)},
            [
                (
                    "params.p25",
                    "past the 25 parameters an event may carry here (GA4 takes 25)",
                    "EXCEEDED_MAX_ENTITIES",
                )
            ],
        ),
        (
            "signup",
            {"ok": True, "x" * 41: 1, "nan": float("nan"), "meta": {"a": 1}},
            [
                (
                    f"params.{'x' * 41}",
                    f"parameter name '{'x' * 40}'… is longer than 40 characters",
                    "NAME_INVALID",
                ),
                ("params.nan", "must be a finite number", "VALUE_INVALID"),
                (
                    "params.meta",
                    "must be a string, a number or a boolean, got dict",
                    "VALUE_INVALID",
                ),
            ],
        ),
    ],
)
def test_invalid_events_name_every_field(
    name: str, properties: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    with pytest.raises(MPEventInvalid) as caught:
        to_mp_event(name, properties, None, now=NOW)
    assert [
        (m.field_path, m.description, m.validation_code) for m in caught.value.messages
    ] == expected
    assert isinstance(caught.value, ValidationError)
    assert caught.value.field == expected[0][0]


def test_timestamps_outside_the_72_hour_window_are_invalid() -> None:
    with pytest.raises(MPEventInvalid) as old:
        to_mp_event("signup", {}, NOW - timedelta(hours=72, seconds=1), now=NOW)
    assert old.value.messages == (
        MPValidationMessage(
            "timestamp", "is more than 72 hours in the past", "VALUE_OUT_OF_BOUNDS"
        ),
    )
    with pytest.raises(MPEventInvalid) as future:
        to_mp_event("signup", {}, NOW + timedelta(minutes=2), now=NOW)
    assert future.value.messages[0].description == "is in the future"
    # Exactly 72 hours back is still accepted.
    edge = to_mp_event("signup", {}, NOW - timedelta(hours=72), now=NOW)
    assert edge["timestamp_micros"] == NOW_MICROS - 72 * 3600 * 1_000_000


# -- batching ----------------------------------------------------------------------------------


def test_build_payloads_exact_and_batched_by_25() -> None:
    events = [{"name": "signup", "params": {"n": i}} for i in range(60)]
    payloads = build_payloads("cid-1", events, user_id="u-9")
    assert [len(p["events"]) for p in payloads] == [25, 25, 10]
    assert payloads[0] == {"client_id": "cid-1", "user_id": "u-9", "events": events[:25]}
    assert payloads[2] == {"client_id": "cid-1", "user_id": "u-9", "events": events[50:]}
    assert build_payloads("cid-1", events[:1], timestamp_micros=7) == [
        {"client_id": "cid-1", "timestamp_micros": 7, "events": events[:1]}
    ]
    assert build_payloads("cid-1", []) == []
    with pytest.raises(ValidationError) as caught:
        build_payloads("", events)
    assert caught.value.field == "client_id"


def test_build_payloads_split_before_130_kb() -> None:
    events = [{"name": "blob", "params": {"data": "v" * 10_000}}] * 30
    payloads = build_payloads("cid", events)
    assert [len(p["events"]) for p in payloads] == [12, 12, 6]

    def size(payload: dict[str, Any]) -> int:
        return len(json.dumps(payload, separators=(",", ":")).encode())

    assert size(payloads[0]) < 130_000
    assert size({**payloads[0], "events": events[:13]}) >= 130_000
    with pytest.raises(ValidationError) as caught:
        build_payloads("cid", [{"name": "blob", "params": {"data": "v" * 130_000}}])
    assert caught.value.field == "events"


# -- sending -----------------------------------------------------------------------------------


def test_send_posts_exact_bodies(fake: FakeMeasurementProtocol) -> None:
    payload = {"client_id": "c1", "events": [{"name": "signup", "params": {"plan": "pro"}}]}
    report = send(MID, SECRET, [payload], endpoint=fake.base_url)
    assert report.ok and report.requests == 1 and report.events_sent == 1
    assert report.outcomes[0].status == 204
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/mp/collect")
    assert request.query == {"measurement_id": MID, "api_secret": SECRET}
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == payload


def test_debug_endpoint_validation_messages_are_parsed(fake: FakeMeasurementProtocol) -> None:
    too_many = {
        "client_id": "c1",
        "events": [{"name": "signup", "params": {}}] * 26,
    }
    bad = {
        "client_id": "c1",
        "events": [{"name": "_bad", "params": {}}, {"name": "ga_x", "params": {"v": "x" * 101}}],
    }
    good = {"client_id": "c1", "events": [{"name": "signup", "params": {}}]}
    report = send(MID, SECRET, [too_many, bad, good], endpoint=fake.base_url, debug=True)
    assert [r.path for r in fake.requests] == ["/debug/mp/collect"] * 3
    assert [o.ok for o in report.outcomes] == [False, False, True]
    assert report.events_sent == 1 and report.events_failed == 28
    assert report.validation_messages == [
        MPValidationMessage(
            "events",
            "Measurement has [26] events which exceeds the maximum of [25].",
            "EXCEEDED_MAX_ENTITIES",
        ),
        MPValidationMessage(
            "events",
            "Event at index: [0] has invalid name [_bad]. Names must start with an alphabetic "
            "character and contain only alphanumeric characters and underscores.",
            "NAME_INVALID",
        ),
        MPValidationMessage(
            "events",
            "Event at index: [1] has name [ga_x] which is reserved.",
            "NAME_RESERVED",
        ),
        MPValidationMessage(
            "events.params.v",
            "Event at index: [1] has param [v] with a value longer than [100] characters.",
            "VALUE_OUT_OF_BOUNDS",
        ),
    ]
    with pytest.raises(MeasurementProtocolError) as caught:
        report.raise_for_failures()
    assert str(caught.value) == (
        "2 of 3 Measurement Protocol payloads failed: payload 0: 1 validation messages; "
        "payload 1: 3 validation messages"
    )


def test_5xx_is_retried_then_counted_failed(fake: FakeMeasurementProtocol) -> None:
    sleeps = Sleeps()
    fake.fail_next(503, times=3)
    payload = {"client_id": "c1", "events": [{"name": "signup", "params": {}}]}
    report = send(MID, SECRET, [payload], endpoint=fake.base_url, retries=2, sleep=sleeps)
    assert len(fake.requests) == 3
    assert sleeps.calls == [0.5, 1.0]
    [outcome] = report.outcomes
    assert (outcome.ok, outcome.attempts, outcome.status, outcome.error) == (
        False,
        3,
        503,
        "HTTP 503",
    )
    assert report.events_failed == 1 and report.events_sent == 0
    # One failure, then success: delivered on the second attempt.
    fake.fail_next(502)
    again = send(MID, SECRET, [payload], endpoint=fake.base_url, retries=2, sleep=sleeps)
    assert (again.ok, again.requests, again.outcomes[0].status) == (True, 2, 204)


def test_4xx_is_not_retried(fake: FakeMeasurementProtocol) -> None:
    sleeps = Sleeps()
    fake.fail_next(400)
    payload = {"client_id": "c1", "events": [{"name": "signup", "params": {}}]}
    report = send(MID, SECRET, [payload], endpoint=fake.base_url, retries=5, sleep=sleeps)
    assert len(fake.requests) == 1 and sleeps.calls == []
    assert (report.outcomes[0].status, report.outcomes[0].error) == (400, "HTTP 400")


def test_send_refuses_bad_arguments_without_echoing_the_secret() -> None:
    with pytest.raises(ValidationError) as bad_id:
        send('G-1"><script>', SECRET, [], endpoint="http://127.0.0.1:1")
    assert bad_id.value.field == "measurement_id"
    with pytest.raises(ValidationError) as no_secret:
        send(MID, "", [], endpoint="http://127.0.0.1:1")
    assert no_secret.value.field == "api_secret"
    with pytest.raises(ValidationError) as bad_endpoint:
        send(MID, SECRET, [], endpoint=f"ftp://{SECRET}")
    assert bad_endpoint.value.field == "endpoint"
    assert SECRET not in str(bad_endpoint.value)


# -- forwarding --------------------------------------------------------------------------------


def test_forwarder_sends_60_events_in_25_25_10(fake: FakeMeasurementProtocol) -> None:
    events = [stored("purchase", minutes_ago=i, value=i) for i in range(60)]
    events.insert(10, stored("page_view"))  # not selected
    result = forwarder(fake).forward("default", events)
    assert (result.sent, result.skipped_invalid, result.failed, result.not_selected) == (
        60,
        0,
        0,
        1,
    )
    assert [len(r.body["events"]) for r in fake.requests] == [25, 25, 10]
    client_id = pseudonymous_client_id("default", "user-1")
    assert client_id == hashlib.sha256(b"default\x00user-1").hexdigest()[:32]
    assert fake.requests[0].body["client_id"] == client_id
    assert fake.requests[0].body["consent"] == {
        "ad_user_data": "DENIED",
        "ad_personalization": "DENIED",
    }
    assert fake.requests[0].body["events"][1] == {
        "name": "purchase",
        "params": {"value": 1, "engagement_time_msec": 1},
        "timestamp_micros": NOW_MICROS - 60_000_000,
    }
    assert fake.requests[2].body["events"][-1]["params"] == {
        "value": 59,
        "engagement_time_msec": 1,
    }
    assert all(r.query == {"measurement_id": MID, "api_secret": SECRET} for r in fake.requests)


def test_forwarder_drops_bad_parameters_and_skips_only_unusable_events(
    fake: FakeMeasurementProtocol,
) -> None:
    events = [
        stored("sign_up", "alice", method="email"),
        stored("sign_up", "bob", method=["email"], plan="pro", beta=True),
        stored("purchase", "alice", minutes_ago=5000, value=3),
        stored("purchase", "bob", value=9),
    ]
    result = forwarder(fake).forward("default", events)
    assert (result.sent, result.skipped_invalid, result.failed) == (3, 1, 0)
    assert result.skipped == [
        SkippedEvent(
            2,
            "purchase-5000",
            "purchase",
            (
                MPValidationMessage(
                    "timestamp", "is more than 72 hours in the past", "VALUE_OUT_OF_BOUNDS"
                ),
            ),
        ),
    ]
    # The list parameter is left out and reported; the event itself is sent.
    assert result.adjusted == [
        SkippedEvent(
            1,
            "sign_up-5",
            "sign_up",
            (
                MPValidationMessage(
                    "params.method",
                    "must be a string, a number or a boolean, got list",
                    "VALUE_INVALID",
                ),
            ),
        ),
    ]
    # One request per client id, in first-seen order.
    assert [
        (r.body["client_id"], [(e["name"], e["params"]) for e in r.body["events"]])
        for r in fake.requests
    ] == [
        (
            pseudonymous_client_id("default", "alice"),
            [("sign_up", {"method": "email", "engagement_time_msec": 1})],
        ),
        (
            pseudonymous_client_id("default", "bob"),
            [
                ("sign_up", {"plan": "pro", "beta": "true", "engagement_time_msec": 1}),
                ("purchase", {"value": 9, "engagement_time_msec": 1}),
            ],
        ),
    ]


def test_forwarder_counts_delivery_failures(fake: FakeMeasurementProtocol) -> None:
    sleeps = Sleeps()
    fake.fail_next(500, times=3)
    events = [stored("purchase", minutes_ago=i) for i in range(30)]
    result = forwarder(fake, retries=2, sleep=sleeps).forward("default", events)
    # The first payload (25 events) fails three times; the second (5 events) goes through.
    assert (result.sent, result.failed, result.skipped_invalid) == (5, 25, 0)
    assert result.errors == ["payload 0: HTTP 500"]
    assert len(fake.requests) == 4 and sleeps.calls == [0.5, 1.0]


def test_forwarder_without_credentials_fails_without_a_request(
    fake: FakeMeasurementProtocol,
) -> None:
    result = forwarder(fake).forward("other", [stored("purchase")])
    assert (result.sent, result.failed) == (0, 1)
    assert result.errors == [
        "scope 'other' has no GA4 measurement id or Measurement Protocol secret"
    ]
    assert fake.requests == []


def test_forwarder_debug_mode_reports_validation(fake: FakeMeasurementProtocol) -> None:
    result = forwarder(fake, debug=True).forward("default", [stored("purchase", value=1)])
    assert (result.sent, result.failed) == (1, 0)
    assert fake.requests[0].path == "/debug/mp/collect"
    assert result.report is not None and result.report.validation_messages == []


def test_from_settings_reads_event_filter_and_endpoint() -> None:
    settings = {
        "UMETRICS_GA4_FORWARD_EVENTS": " purchase ,sign_up",
        "UMETRICS_GA4_MP_ENDPOINT": "http://127.0.0.1:9",
    }
    built = MeasurementProtocolForwarder.from_settings(
        settings, measurement_id_for_scope=lambda s: MID, api_secret_for_scope=lambda s: SECRET
    )
    assert built.event_names == frozenset({"purchase", "sign_up"})
    assert built.endpoint == "http://127.0.0.1:9"
    assert (built.selects("purchase"), built.selects("page_view")) == (True, False)
    assert SECRET not in repr(built)


# -- the secret stays secret -------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_secret_never_reaches_logs_or_exceptions(
    fake: FakeMeasurementProtocol, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    payload = {"client_id": "c1", "events": [{"name": "signup", "params": {}}]}
    fake.fail_next(503)
    served = send(MID, SECRET, [payload], endpoint=fake.base_url, sleep=Sleeps())
    fake.fail_next(403)
    refused = send(MID, SECRET, [payload], endpoint=fake.base_url, sleep=Sleeps())
    unreachable = send(
        MID, SECRET, [payload], endpoint=f"http://127.0.0.1:{closed_port()}", sleep=Sleeps()
    )
    assert (served.ok, refused.ok, unreachable.ok) == (True, False, False)
    assert unreachable.outcomes[0].attempts == 3 and unreachable.outcomes[0].status is None
    error = unreachable.outcomes[0].error
    assert error is not None and error.startswith("no answer (URLError: ")

    texts = [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    redacted = f"{fake.base_url}/mp/collect?measurement_id={MID}&api_secret=REDACTED"
    assert any(redacted in text for text in texts)
    assert len(caplog.records) >= 8
    assert all(SECRET not in text for text in texts)
    assert all(record.exc_info is None for record in caplog.records)

    for report in (refused, unreachable):
        with pytest.raises(MeasurementProtocolError) as caught:
            report.raise_for_failures()
        assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
        assert caught.value.__cause__ is None
        assert SECRET not in repr(report)


def test_redact_url() -> None:
    assert redact_url(f"https://x.test/mp/collect?measurement_id={MID}&api_secret={SECRET}") == (
        f"https://x.test/mp/collect?measurement_id={MID}&api_secret=REDACTED"
    )


# -- what GA4 needs to report forwarded events -------------------------------------------------

THREE_ITEMS = [
    {"item_id": "SKU_1", "item_name": "Tee", "price": 10.5, "quantity": 2, "in_stock": True},
    {"item_id": "SKU_2", "item_category": "Mugs", "price": 4, "quantity": 1},
    {"item_name": "Gift card", "price": 20, "quantity": 1, "item_variant": None},
]


def test_a_purchase_with_three_items_passes_googles_item_rules(
    fake: FakeMeasurementProtocol,
) -> None:
    event = stored(
        "purchase",
        "ann",
        transaction_id="T-1",
        currency="EUR",
        value=45,
        items=THREE_ITEMS,
    )
    event["session_id"] = "1717000000"
    event["ga_client_id"] = "GA1.1.1234567890.1717000000"
    event["consent"] = {"ad_user_data": "GRANTED", "ad_personalization": "DENIED"}
    for debug in (True, False):
        result = forwarder(fake, debug=debug).forward("default", [event])
        assert (result.sent, result.failed, result.skipped, result.adjusted) == (1, 0, [], [])
    validated, collected = fake.requests
    assert validated.path == "/debug/mp/collect" and collected.path == "/mp/collect"
    assert result.report is not None
    assert collected.body == {
        "client_id": "1234567890.1717000000",
        "consent": {"ad_user_data": "GRANTED", "ad_personalization": "DENIED"},
        "events": [
            {
                "name": "purchase",
                "params": {
                    "transaction_id": "T-1",
                    "currency": "EUR",
                    "value": 45,
                    "items": [
                        {
                            "item_id": "SKU_1",
                            "item_name": "Tee",
                            "price": 10.5,
                            "quantity": 2,
                            "in_stock": "true",
                        },
                        {"item_id": "SKU_2", "item_category": "Mugs", "price": 4, "quantity": 1},
                        {"item_name": "Gift card", "price": 20, "quantity": 1},
                    ],
                    "session_id": "1717000000",
                    "engagement_time_msec": 1,
                },
                "timestamp_micros": NOW_MICROS - 5 * 60_000_000,
            }
        ],
    }
    assert validate(collected.body) == []


def test_the_fake_validation_server_applies_googles_item_and_param_rules() -> None:
    def body(params: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"client_id": "1.2", "events": [{"name": "purchase", "params": params}], **extra}

    assert [m["validationCode"] for m in validate(body({"items": [{"price": 1}]}))] == [
        "VALUE_REQUIRED"
    ]
    assert validate(body({"items": [{"item_id": "a"}] * 201}))[0]["description"] == (
        "Event at index: [0] has [201] items which exceeds the maximum of [200]."
    )
    assert [m["fieldPath"] for m in validate(body({"flag": True, "tags": ["a"], "ga_x": 1}))] == [
        "events.params.flag",
        "events.params.tags",
        "events.params.ga_x",
    ]
    assert [m["fieldPath"] for m in validate(body({"v": 1}, consent={"ad_storage": "yes"}))] == [
        "consent.ad_storage"
    ]
    custom = {"item_id": "a", **{f"c{i}": i for i in range(28)}}
    assert [m["validationCode"] for m in validate(body({"items": [custom]}))] == [
        "EXCEEDED_MAX_ENTITIES"
    ]


def test_bad_items_are_dropped_one_by_one_and_at_most_200_are_sent(
    fake: FakeMeasurementProtocol,
) -> None:
    items: list[Any] = [{"item_id": f"S{i}", "quantity": 1} for i in range(205)]
    items[0] = {"price": 3}  # neither item_id nor item_name
    items[1] = "SKU"  # not an object
    items[2] = {"item_id": "S2", "notes": "n" * 101, "tags": ["x"]}
    prepared = prepare_mp_event("purchase", {"items": items, "value": 1}, None)
    sent_items = prepared.event["params"]["items"]
    assert len(sent_items) == 198  # items 3..199 plus item 2 without its two bad fields
    assert sent_items[0] == {"item_id": "S2"} and sent_items[-1] == {
        "item_id": "S199",
        "quantity": 1,
    }
    assert [(m.field_path, m.validation_code) for m in prepared.dropped] == [
        ("params.items[0]", "VALUE_REQUIRED"),
        ("params.items[1]", "VALUE_INVALID"),
        ("params.items[2].notes", "VALUE_OUT_OF_BOUNDS"),
        ("params.items[2].tags", "VALUE_INVALID"),
        ("params.items", "EXCEEDED_MAX_ENTITIES"),
    ]
    result = forwarder(fake, debug=True).forward(
        "default", [stored("purchase", items=items, value=1)]
    )
    assert (result.sent, result.failed) == (1, 0)
    assert validate(fake.requests[0].body) == []


def test_too_many_parameters_drop_the_last_ones_not_the_event(
    fake: FakeMeasurementProtocol,
) -> None:
    params = {f"p{i:02d}": i for i in range(30)}
    event = stored("sign_up", **params)
    event["session_id"] = "s-1"
    result = forwarder(fake, debug=True).forward("default", [event])
    assert (result.sent, result.failed) == (1, 0)
    sent = fake.requests[0].body["events"][0]["params"]
    # 23 own parameters + session_id + engagement_time_msec = GA4's 25.
    assert list(sent) == [f"p{i:02d}" for i in range(23)] + ["session_id", "engagement_time_msec"]
    assert [m.field_path for m in result.adjusted[0].messages] == [
        f"params.p{i:02d}" for i in range(23, 30)
    ]
    assert validate(fake.requests[0].body) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("GA1.1.1234567890.1717000000", "1234567890.1717000000"),
        ("GA1.2.99.1", "99.1"),
        ("1234567890.1717000000", "1234567890.1717000000"),
        ("GA1.1.abc.1", None),
        ("user-1", None),
        (12, None),
        (None, None),
    ],
)
def test_gtag_client_id_from_the_ga_cookie(value: object, expected: str | None) -> None:
    assert gtag_client_id(value) == expected


def test_engagement_and_session_come_from_the_event(fake: FakeMeasurementProtocol) -> None:
    own = stored("sign_up", engagement_time_msec=2500)
    own["session_id"] = "x" * 150  # longer than GA4 takes: a stable 32-character digest
    forwarder(fake).forward("default", [own, stored("sign_up", "bob", engagement_time_msec=0)])
    first, second = (r.body["events"][0]["params"] for r in fake.requests)
    assert first["engagement_time_msec"] == 2500
    assert first["session_id"] == hashlib.sha256(b"x" * 150).hexdigest()[:32]
    assert second == {"engagement_time_msec": 1}
