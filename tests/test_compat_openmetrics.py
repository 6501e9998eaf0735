"""open-metrics' /v1 API: ?q=<json> payloads, plain-text answers, merges, auth, bad input."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_umetrics import UMetrics, create_api_key
from flask_umetrics.db.tables import events, person_distinct_ids, persons
from flask_umetrics.events.validation import to_micros
from flask_umetrics.queries.active import active_users
from flask_umetrics.queries.context import report_context
from flask_umetrics.state import current_state

from .conftest import AppFactory

V1 = "/umetrics/v1"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
T0_MS = int(T0.timestamp() * 1000)


def raw_get(client: FlaskClient, route: str, payload: Any, **headers: str) -> Any:
    """As open-metrics' browser client does it: the JSON appended without URL-encoding."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return client.get(f"{V1}/{route}", query_string="q=" + text, headers=headers)


def encoded_get(client: FlaskClient, route: str, payload: Any, **headers: str) -> Any:
    return client.get(f"{V1}/{route}?q={quote(json.dumps(payload))}", headers=headers)


def stored(app: Flask) -> list[Any]:
    with app.app_context(), current_state().engine.connect() as connection:
        return list(
            connection.execute(
                select(
                    events.c.scope_id,
                    events.c.event,
                    events.c.distinct_id,
                    events.c.ts,
                    events.c.active,
                    events.c.properties,
                ).order_by(events.c.ts, events.c.event)
            ).all()
        )


def groups(app: Flask) -> list[tuple[set[str], dict[str, Any]]]:
    """Each person as (its distinct ids, its properties)."""
    with app.app_context(), current_state().engine.connect() as connection:
        ids = connection.execute(
            select(person_distinct_ids.c.person_id, person_distinct_ids.c.distinct_id)
        ).all()
        props = dict(connection.execute(select(persons.c.id, persons.c.properties)).all())
    found: dict[int, set[str]] = {}
    for person_id, distinct_id in ids:
        found.setdefault(person_id, set()).add(distinct_id)
    return sorted(((d, props[p] or {}) for p, d in found.items()), key=lambda g: sorted(g[0]))


def keyed_open_app(make_app: AppFactory, **config: Any) -> Flask:
    """The app as an unmodified client meets it: keyless calls act with the host's public
    open-metrics key (``UMETRICS_OPENMETRICS_KEY``), created on the same database first."""
    with make_app().app_context():
        key = create_api_key("default", "openmetrics")
    return make_app(
        UMETRICS_ENABLE_OPENMETRICS_API=True,
        UMETRICS_MAX_EVENT_AGE_DAYS=0,
        UMETRICS_OPENMETRICS_KEY=key,
        **config,
    )


@pytest.fixture
def open_app(make_app: AppFactory) -> Flask:
    return keyed_open_app(make_app)


@pytest.fixture
def keyed_app(make_app: AppFactory) -> Flask:
    """No authorizer: every call needs a write key."""
    return make_app(UMETRICS_ENABLE_OPENMETRICS_API=True, UMETRICS_MAX_EVENT_AGE_DAYS=0)


def test_ping_answers_pong_to_anyone(keyed_app: Flask) -> None:
    answer = keyed_app.test_client().get(f"{V1}/ping")
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "pong"
    assert answer.mimetype == "text/plain"
    # CORS only for UMETRICS_ALLOWED_ORIGINS (tests/test_cross_site.py), never "*".
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert stored(keyed_app) == []


@pytest.mark.parametrize("identify_granted", [False, True], ids=["ingest", "ingest+identify"])
def test_the_browser_clients_flow_merges_and_counts_one_person(
    make_app: AppFactory, identify_granted: bool
) -> None:
    """The unmodified client's flow. Its setUserProps after setUserId sets properties of an
    identified user: the host's authorizer must grant ``identify`` too, else 403 and nothing."""
    extension = UMetrics()
    granted = {"ingest", "identify"} if identify_granted else {"ingest"}
    extension.authorizer(lambda permission, scope_id: permission in granted)
    open_app = make_app(
        extension, UMETRICS_ENABLE_OPENMETRICS_API=True, UMETRICS_MAX_EVENT_AGE_DAYS=0
    )
    client = open_app.test_client()
    first = raw_get(
        client,
        "events",
        {
            "events": [
                {"name": "login", "ts": T0_MS, "props": {"q": "a&b=c+d 50%"}},
                {"name": "share", "ts": T0_MS + 1000, "props": {"destination": "fb"}},
                {
                    "name": "emailNotificationSent",
                    "ts": T0_MS + 2000,
                    "options": {"active": False},
                },
            ],
            "sessionId": "abc",
        },
    )
    assert first.status_code == 200 and first.get_data(as_text=True) == "ok"
    # A second device of the same user, and seconds instead of milliseconds.
    raw_get(
        client,
        "events",
        {"events": [{"name": "like", "ts": T0_MS // 1000 + 60}], "sessionId": "xyz"},
    )
    assert raw_get(client, "setUserId", {"sessionId": "abc", "uid": "myUserId"}).data == b"ok"
    assert raw_get(client, "setUserId", {"sessionId": "xyz", "userId": "myUserId"}).data == b"ok"
    props = {"sessionId": "xyz", "props": {"first-name": "barack", "last-name": "obama"}}
    answer = encoded_get(client, "setUserProps", props)
    if identify_granted:
        assert answer.status_code == 200 and answer.data == b"ok"
    else:
        assert answer.status_code == 403
        assert answer.json["error"]["code"] == "identify_permission_required"
        assert answer.json["error"]["details"][0]["field"] == "props"

    rows = stored(open_app)
    assert [(r.event, r.distinct_id, r.ts, r.active) for r in rows] == [
        ("login", "abc", to_micros(T0), True),
        ("share", "abc", to_micros(T0) + 1_000_000, True),
        ("emailNotificationSent", "abc", to_micros(T0) + 2_000_000, False),
        ("like", "xyz", to_micros(T0) + 60_000_000, True),
    ]
    assert rows[0].properties == {"q": "a&b=c+d 50%"}  # raw '&' and '+' survive
    expected_props = {"first-name": "barack", "last-name": "obama"} if identify_granted else {}
    assert groups(open_app) == [({"abc", "myUserId", "xyz"}, expected_props)]
    with open_app.app_context():
        ctx = report_context(date_from=T0, date_to=datetime(2026, 3, 3, tzinfo=timezone.utc))
        assert active_users(ctx).count == 1  # both devices' past counts under the user


def test_create_user_returns_an_id_and_ping_extends_the_session(keyed_app: Flask) -> None:
    with keyed_app.app_context():
        key = create_api_key("default", "ingest")
    client = keyed_app.test_client()
    header = {"X-UMetrics-Key": key}
    new = encoded_get(client, "createUser", {}, **header)
    assert new.status_code == 200
    session = new.json["sessionId"]
    assert isinstance(session, str) and len(session) >= 12
    second = encoded_get(client, "createUser", {}, **header).json["sessionId"]
    assert second != session
    given = encoded_get(client, "createUser", {"sessionId": "s-1"}, **header)
    assert given.json == {"sessionId": "s-1"}
    # One person per created id (random ids may sort either side of "s-1").
    assert sorted(sorted(ids) for ids, _ in groups(keyed_app)) == sorted(
        [[session], [second], ["s-1"]]
    )
    assert stored(keyed_app) == []  # creating a visitor logs no event

    pinged = encoded_get(client, "ping", {"sessionId": "s-1"}, **header)
    assert pinged.get_data(as_text=True) == "pong"
    assert [(r.event, r.distinct_id, r.active) for r in stored(keyed_app)] == [
        ("$ping", "s-1", True)
    ]
    refused = encoded_get(client, "ping", {"sessionId": "s-1"})
    assert refused.status_code == 401


def test_payload_may_come_as_a_post_body_with_the_key_inside(keyed_app: Flask) -> None:
    with keyed_app.app_context():
        key = create_api_key("site", "ingest")
    client = keyed_app.test_client()
    body = {
        "api_key": key,
        "scope_id": "site",
        "sessionId": "p1",
        "events": [{"name": "view", "ts": T0_MS}],
    }
    answer = client.post(f"{V1}/events", json=body)
    assert answer.status_code == 200 and answer.data == b"ok"
    in_q = encoded_get(client, "events", {**body, "events": [{"name": "more", "ts": T0_MS}]})
    assert in_q.status_code == 200
    scoped = client.get(
        f"{V1}/events?scope_id=site&q={quote(json.dumps({'sessionId': 'p1', 'events': []}))}",
        headers={"X-UMetrics-Key": key},
    )
    assert scoped.status_code == 200
    assert [(r.scope_id, r.event) for r in stored(keyed_app)] == [
        ("site", "more"),
        ("site", "view"),
    ]


ROUTES = [
    ("createUser", {"sessionId": "s"}),
    ("events", {"sessionId": "s", "events": [{"name": "e", "ts": T0_MS}]}),
    ("setUserId", {"sessionId": "s", "uid": "u"}),
    ("setUserProps", {"sessionId": "s", "props": {"a": 1}}),
    ("ping", {"sessionId": "s"}),
]


@pytest.mark.parametrize(("route", "payload"), ROUTES)
def test_writes_need_a_write_key_of_the_scope(
    keyed_app: Flask, route: str, payload: dict[str, Any]
) -> None:
    with keyed_app.app_context():
        other = create_api_key("other", "ingest")
        viewer = create_api_key("default", "metrics.view")
        mine = create_api_key("default", "ingest")
    client = keyed_app.test_client()
    anonymous = encoded_get(client, route, payload)
    assert anonymous.status_code == 401
    assert anonymous.json["error"]["code"] == "authentication_required"
    foreign = encoded_get(client, route, payload, **{"X-UMetrics-Key": other})
    assert foreign.status_code == 403 and foreign.json["error"]["code"] == "wrong_scope"
    foreign_in_q = encoded_get(client, route, {**payload, "api_key": other})
    assert foreign_in_q.status_code == 403
    reader = encoded_get(client, route, payload, **{"X-UMetrics-Key": viewer})
    assert reader.status_code == 403
    assert stored(keyed_app) == [] and groups(keyed_app) == []
    assert encoded_get(client, route, {**payload, "api_key": mine}).status_code == 200


@pytest.mark.parametrize(
    ("route", "payload", "field"),
    [
        ("events", "{not json", "q"),
        ("events", "[1, 2]", "q"),
        ("events", {"events": []}, "sessionId"),
        ("events", {"sessionId": "", "events": []}, "sessionId"),
        ("events", {"sessionId": ["a"], "events": []}, "sessionId"),
        ("events", {"sessionId": "s"}, "events"),
        ("events", {"sessionId": "s", "events": {"name": "e"}}, "events"),
        ("events", {"sessionId": "s", "events": [{"ts": T0_MS}, {"ts": T0_MS}]}, "events[0].name"),
        ("events", {"sessionId": "s", "events": [{"name": "e", "ts": "today"}]}, "events[0].ts"),
        ("events", {"sessionId": "s", "events": [{"name": "e", "ts": 1e300}]}, "events[0].ts"),
        ("events", {"sessionId": "s", "events": [{"name": "e", "props": [1]}]}, "events[0].props"),
        ("events", {"sessionId": "s", "events": [{"name": "e", "colour": 1}]}, "events[0].colour"),
        ("events", {"sessionId": "s", "events": ["e"]}, "events[0]"),
        ("events", {"sessionId": "s", "events": [], "scope_id": "bad scope"}, "scope_id"),
        ("setUserId", {"sessionId": "s"}, "uid"),
        ("setUserId", {"sessionId": "s", "uid": {"a": 1}}, "uid"),
        ("setUserProps", {"sessionId": "s", "props": "x"}, "props"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(
    open_app: Flask, route: str, payload: Any, field: str
) -> None:
    client = open_app.test_client()
    text = payload if isinstance(payload, str) else json.dumps(payload)
    answer = client.get(f"{V1}/{route}?q={quote(text)}")
    assert answer.status_code == 400, answer.json
    assert answer.json["error"]["details"][0]["field"] == field
    assert stored(open_app) == []


def test_scope_in_query_and_payload_must_agree(open_app: Flask) -> None:
    client = open_app.test_client()
    payload = quote(json.dumps({"sessionId": "s", "events": [], "scope_id": "a"}))
    answer = client.get(f"{V1}/events?scope_id=b&q={payload}")
    assert answer.status_code == 400
    assert answer.json["error"]["details"][0]["field"] == "scope_id"


def test_routes_are_off_unless_enabled(make_app: AppFactory) -> None:
    assert make_app().test_client().get(f"{V1}/ping").status_code == 404
