"""Ingestion: partial acceptance, idempotency by uuid, limits, bots and DNT, write keys."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from flask_umetrics import create_api_key
from flask_umetrics.db.tables import events, person_distinct_ids, persons
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .events_data import stored_events

API = "/umetrics/api"
NOW = datetime.now(timezone.utc).replace(microsecond=0)

pytestmark = pytest.mark.event_stores


def iso(moment: datetime) -> str:
    return moment.isoformat()


def count(app: Flask, table=events) -> int:  # type: ignore[no-untyped-def]
    """Rows of ``table``; events are counted in the store that holds them."""
    with app.app_context():
        if table is events:
            return len(stored_events())
        with current_state().engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app(UMETRICS_MAX_BATCH_EVENTS=50, UMETRICS_MAX_PROPERTIES_BYTES=512)


@pytest.fixture
def key(app: Flask) -> str:
    with app.app_context():
        return create_api_key("site", "ingest")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def send(client: FlaskClient, key: str, batch: list, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"{API}/events?scope_id=site",
        json={"events": batch},
        headers={"X-UMetrics-Key": key, **headers},
    )


def good(i: int, **extra: object) -> dict:
    return {
        "event": "pageview",
        "distinct_id": f"u{i % 3}",
        "uuid": f"e-{i}",
        "timestamp": iso(NOW - timedelta(minutes=i)),
        **extra,
    }


def test_a_bad_event_is_named_and_the_others_stored(
    app: Flask, client: FlaskClient, key: str
) -> None:
    batch = [
        good(0),
        {"event": "", "distinct_id": "x"},
        good(2),
        {"event": "e", "distinct_id": "x", "timestamp": "yesterday"},
        "not an object",
        {"event": "e", "distinct_id": "x", "colour": "red"},
    ]
    response = send(client, key, batch)
    assert response.status_code == 200
    body = response.json
    assert (body["accepted"], body["duplicates"], body["filtered"]) == (2, 0, 0)
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "event"),
        (3, "timestamp"),
        (4, "event"),
        (5, "colour"),
    ]
    assert count(app) == 2
    assert count(app, persons) == 2 and count(app, person_distinct_ids) == 2


def test_resending_with_the_same_uuids_stores_nothing_new(
    app: Flask, client: FlaskClient, key: str
) -> None:
    batch = [good(i) for i in range(10)]
    assert send(client, key, batch).json["accepted"] == 10
    again = send(client, key, batch).json
    assert (again["accepted"], again["duplicates"]) == (0, 10)
    twice_in_one = send(client, key, [good(20), good(20)]).json
    assert (twice_in_one["accepted"], twice_in_one["duplicates"]) == (1, 1)
    assert count(app) == 11
    # The same uuid in another scope is another event.
    with app.app_context():
        other = create_api_key("other", "ingest")
    assert (
        client.post(
            f"{API}/events?scope_id=other",
            json={"events": [good(0)]},
            headers={"X-UMetrics-Key": other},
        ).json["accepted"]
        == 1
    )


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"event": "x" * 201, "distinct_id": "a"}, "event"),
        ({"event": "e", "distinct_id": "a" * 201}, "distinct_id"),
        ({"event": "e"}, "distinct_id"),
        ({"event": "e", "distinct_id": 5}, "distinct_id"),
        ({"event": "e", "distinct_id": "a", "properties": {"p": "x" * 600}}, "properties"),
        (
            {"event": "e", "distinct_id": "a", "properties": {"a": {"b": {"c": {"d": {"e": {}}}}}}},
            "properties",
        ),
        ({"event": "e", "distinct_id": "a", "properties": [1]}, "properties"),
        (
            {"event": "e", "distinct_id": "a", "timestamp": iso(NOW - timedelta(days=500))},
            "timestamp",
        ),
        (
            {"event": "e", "distinct_id": "a", "timestamp": iso(NOW + timedelta(days=1))},
            "timestamp",
        ),
        ({"event": "e", "distinct_id": "a", "active": "yes"}, "active"),
        ({"event": "e", "distinct_id": "a", "uuid": "u" * 65}, "uuid"),
        ({"event": "e\x00", "distinct_id": "a"}, "event"),
    ],
)
def test_limits_reject_the_event_naming_the_field(
    app: Flask, client: FlaskClient, key: str, event: dict, field: str
) -> None:
    body = send(client, key, [event, good(1)]).json
    assert body["accepted"] == 1
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [(0, field)]


def test_oversized_batches_and_bodies_are_refused_whole(
    app: Flask, client: FlaskClient, key: str
) -> None:
    too_many = send(client, key, [good(i) for i in range(51)])
    assert too_many.status_code == 413 and too_many.json["error"]["code"] == "too_many_events"
    huge = client.post(
        f"{API}/events",
        data=json.dumps({"events": [], "pad": "x" * 1_100_000}),
        content_type="application/json",
        headers={"X-UMetrics-Key": key},
    )
    assert huge.status_code == 413
    assert count(app) == 0


@pytest.mark.parametrize(
    ("body", "status", "rejected"),
    [
        ("", 400, None),  # no events field
        ("null", 400, None),
        ("[]", 400, None),
        ("{}", 400, None),
        ('{"events": null}', 400, None),
        ('{"events": {}}', 400, None),
        ('{"events": "x"}', 400, None),
        ('{"events": [[]]}', 200, 1),  # a batch whose one event is not an object
        ('{"events": [null]}', 200, 1),
        ("{bad json", 400, None),
        ('{"events": [], "other": 1}', 400, None),
        ('"string"', 400, None),
        ("12", 400, None),
        ('{"events": [{"event": {"nested": 1}, "distinct_id": "a"}]}', 200, 1),
    ],
)
def test_malformed_bodies_get_4xx_never_500(
    app: Flask, client: FlaskClient, key: str, body: str, status: int, rejected: int | None
) -> None:
    response = client.post(
        f"{API}/events?scope_id=site",
        data=body,
        content_type="application/json",
        headers={"X-UMetrics-Key": key},
    )
    assert response.status_code == status, response.json
    if rejected is None:
        assert response.json["error"]["code"] in {"validation_error", "invalid_json"}
    else:
        assert (response.json["accepted"], len(response.json["rejected"])) == (0, rejected)
    assert count(app) == 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "events",
                        "event",
                        "distinct_id",
                        "properties",
                        "timestamp",
                        "uuid",
                        "active",
                        "x",
                    ]
                ),
                children,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_fuzzed_bodies_never_500(client: FlaskClient, key: str, body: object) -> None:
    response = client.post(
        f"{API}/events?scope_id=site", json=body, headers={"X-UMetrics-Key": key}
    )
    assert response.status_code < 500


def test_write_keys_and_permissions(app: Flask, client: FlaskClient, key: str) -> None:
    in_body = client.post(f"{API}/events?scope_id=site", json={"events": [good(1)], "api_key": key})
    assert in_body.status_code == 200 and in_body.json["accepted"] == 1
    assert client.post(f"{API}/events?scope_id=site", json={"events": []}).status_code == 401
    with app.app_context():
        viewer = create_api_key("site", "metrics.view")
    refused = client.post(
        f"{API}/events?scope_id=site",
        json={"events": [good(2)]},
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert refused.status_code == 403
    # An ingest key can write events but read nothing.
    assert (
        client.get(f"{API}/stats?scope_id=site", headers={"X-UMetrics-Key": key}).status_code == 401
    )
    assert (
        client.get(
            f"{API}/stats?scope_id=site", headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 403
    )
    other_scope = client.post(
        f"{API}/events?scope_id=elsewhere",
        json={"events": [good(3)]},
        headers={"X-UMetrics-Key": key},
    )
    assert other_scope.status_code == 403
    assert count(app) == 1


def test_bots_and_do_not_track_are_counted_not_stored(
    app: Flask, client: FlaskClient, key: str
) -> None:
    crawler = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    browser = {"Origin": "https://example.com"}
    by_header = send(client, key, [good(1)], **browser, **{"User-Agent": crawler}).json
    assert (by_header["accepted"], by_header["filtered"]) == (0, 1)
    by_property = send(client, key, [good(2, properties={"$user_agent": crawler})]).json
    assert (by_property["accepted"], by_property["filtered"]) == (0, 1)
    dnt = send(client, key, [good(3), good(4)], **browser, DNT="1").json
    assert (dnt["accepted"], dnt["filtered"]) == (0, 2)
    gpc = send(client, key, [good(5)], **browser, **{"Sec-GPC": "1"}).json
    assert gpc["filtered"] == 1
    # A server-side sender's own user agent is not a browser's: its events are kept.
    server = send(client, key, [good(6)], **{"User-Agent": "python-requests/2.32"}).json
    assert server["accepted"] == 1
    assert count(app) == 1
