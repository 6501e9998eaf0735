"""What the public write key may do to identities (issue 12, problem 2).

An ``ingest`` key is printed into every page, so anyone holds it. It writes events and links an
anonymous id that is not identified yet to a user (the browser's sign-up and log-in), but it may
not merge two identified persons, set properties of an identified person, or change a recorded
``$consent``: that needs ``identify`` (a server-side key, or ``metrics.manage``). Each refusal is
a 403 ``identify_permission_required`` naming the field, and nothing of the request is stored.
The same rule holds on the native API, togo's and open-metrics'.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_umetrics import (
    UMetrics,
    create_api_key,
    create_experiment,
    delete_person,
    identify,
    list_api_keys,
    resolve_variant,
    set_person_properties,
    start_experiment,
    track,
)
from flask_umetrics.auth import GRANTS, PERMISSIONS
from flask_umetrics.db.tables import events, person_distinct_ids, persons
from flask_umetrics.queries.segments import save_segment
from flask_umetrics.state import current_state

from .conftest import AppFactory

API = "/umetrics/api"
TOGO = "/umetrics/api/analytics"
V1 = "/umetrics/v1"
REFUSED = "identify_permission_required"

#: One person as the tests compare it: (person id, its distinct ids, properties, identified).
Person = tuple[int, tuple[str, ...], dict[str, Any], bool]


def people(app: Flask) -> list[Person]:
    """Every person of the default scope, by id: ids, distinct ids, properties, identified."""
    with app.app_context(), current_state().engine.connect() as connection:
        rows = connection.execute(
            select(persons.c.id, persons.c.properties, persons.c.is_identified).order_by(
                persons.c.id
            )
        ).all()
        links = connection.execute(
            select(person_distinct_ids.c.person_id, person_distinct_ids.c.distinct_id)
        ).all()
    ids: dict[int, list[str]] = {}
    for person_id, distinct_id in links:
        ids.setdefault(person_id, []).append(distinct_id)
    return [
        (row.id, tuple(sorted(ids.get(row.id, []))), dict(row.properties or {}), row.is_identified)
        for row in rows
    ]


def groups(app: Flask) -> set[tuple[str, ...]]:
    return {distinct_ids for _, distinct_ids, _, _ in people(app)}


def event_count(app: Flask) -> int:
    with app.app_context(), current_state().engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(events)).scalar_one())


def keyed_app(make_app: AppFactory) -> Flask:
    """No authorizer: every write needs a key. Both compatibility APIs on."""
    return make_app(
        UMETRICS_ENABLE_TOGO_API=True,
        UMETRICS_ENABLE_OPENMETRICS_API=True,
        UMETRICS_TRACK_SYNC=True,
        UMETRICS_MAX_EVENT_AGE_DAYS=0,
    )


def key(app: Flask, permission: str) -> dict[str, str]:
    with app.app_context():
        return {"X-UMetrics-Key": create_api_key("default", permission)}


def two_identified_people(app: Flask) -> list[Person]:
    """alice (who refused consent) and bob, each identified from the host's code."""
    with app.app_context():
        track("$pageview", distinct_id="anon-a")
        identify("alice", anon_id="anon-a", traits={"email": "a@example.com", "$consent": False})
        identify("bob", traits={"email": "b@example.com", "plan": "free"})
        track("purchase", distinct_id="bob")
    before = people(app)
    assert [p[1:] for p in before] == [
        (("alice", "anon-a"), {"email": "a@example.com", "$consent": False}, True),
        (("bob",), {"email": "b@example.com", "plan": "free"}, True),
    ]
    return before


def assert_refused(answer: Any, field: str) -> None:
    assert answer.status_code == 403, answer.get_data(as_text=True)
    error = answer.json["error"]
    assert error["code"] == REFUSED
    assert error["details"][0]["field"] == field
    assert error["details"][0]["permission"] == "identify"
    assert error["message"].startswith(f"{field}: ")


def v1(client: FlaskClient, route: str, payload: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.get(f"{V1}/{route}?q={quote(json.dumps(payload))}", headers=headers)


def set_plan_pro_anonymously(client: FlaskClient, session: str, write: dict[str, str]) -> None:
    """A fresh anonymous session records plan=pro through open-metrics (allowed: its own)."""
    answer = v1(client, "setUserProps", {"sessionId": session, "props": {"plan": "pro"}}, write)
    assert answer.data == b"ok"


# --- merging two identified persons -----------------------------------------------------------

#: Each API's way of asking "merge alice into bob": (method, path or open-metrics route, body,
#: the field the refusal names).
MERGES: dict[str, tuple[str, dict[str, Any], str]] = {
    "native": (f"{API}/identify", {"distinct_id": "bob", "anon_id": "alice"}, "anon_id"),
    "native-new-user": (f"{API}/identify", {"distinct_id": "mallory", "anon_id": "bob"}, "anon_id"),
    "togo-identify": (f"{TOGO}/identify", {"user_id": "bob", "anon_id": "alice"}, "anon_id"),
    "togo-events": (
        f"{TOGO}/events",
        {
            "events": [
                {"name": "visit", "user_id": "eve", "timestamp": "2026-03-02T10:00:00Z"},
                {
                    "name": "x",
                    "user_id": "bob",
                    "anon_id": "alice",
                    "timestamp": "2026-03-02T10:01Z",
                },
            ]
        },
        "anon_id",
    ),
    "openmetrics-setUserId": ("setUserId", {"sessionId": "alice", "uid": "bob"}, "sessionId"),
}


def send(client: FlaskClient, target: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    if target.startswith("/"):
        return client.post(target, json=body, headers=headers)
    return v1(client, target, body, headers)


@pytest.mark.parametrize("api", list(MERGES))
def test_the_public_key_cannot_merge_identified_persons(make_app: AppFactory, api: str) -> None:
    """The reproduction: with the page's write key anyone could fold alice into bob (or into a
    new id), so deleting bob's data would delete alice's too. Refused; nothing changes."""
    app = keyed_app(make_app)
    before = two_identified_people(app)
    events_before = event_count(app)
    target, body, field = MERGES[api]
    assert_refused(send(app.test_client(), target, body, key(app, "ingest")), field)
    assert people(app) == before  # ids, distinct ids, properties, identified: all unchanged
    assert event_count(app) == events_before  # not half a batch: the togo events are not stored
    with app.app_context():
        report = delete_person("bob")
    assert report.distinct_ids == 1
    assert groups(app) == {("alice", "anon-a")}


@pytest.mark.parametrize("permission", ["identify", "metrics.manage"])
@pytest.mark.parametrize("api", list(MERGES))
def test_an_identify_key_may_merge_identified_persons(
    make_app: AppFactory, api: str, permission: str
) -> None:
    app = keyed_app(make_app)
    two_identified_people(app)
    target, body, _ = MERGES[api]
    answer = send(app.test_client(), target, body, key(app, permission))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    if api == "native-new-user":
        assert groups(app) == {("alice", "anon-a"), ("bob", "mallory")}
    elif api == "togo-events":
        assert groups(app) == {("alice", "anon-a", "bob"), ("eve",)}
        assert answer.json == {"accepted": 2, "duplicates": 0, "rejected": []}
    else:
        assert groups(app) == {("alice", "anon-a", "bob")}


def test_the_host_authorizer_is_asked_for_identify(make_app: AppFactory) -> None:
    """Without a key, the host's authorizer decides: it is asked ("identify", scope) only when
    the request needs more than ingest."""
    asked: list[tuple[str, str]] = []
    extension = UMetrics()

    @extension.authorizer
    def can(permission: str, scope_id: str) -> bool:
        asked.append((permission, scope_id))
        return permission == "ingest" or request.headers.get("X-Role") == "admin"

    app = make_app(extension, UMETRICS_TRACK_SYNC=True)
    before = two_identified_people(app)
    client = app.test_client()
    fresh = {"distinct_id": "bob", "anon_id": "anon-b"}  # a new id: ingest is enough
    assert client.post(f"{API}/identify", json=fresh).status_code == 200
    assert asked == [("ingest", "default")]
    before = people(app)
    asked.clear()
    body = {"distinct_id": "bob", "anon_id": "alice"}
    assert_refused(client.post(f"{API}/identify", json=body), "anon_id")
    assert asked == [("ingest", "default"), ("identify", "default")]
    assert people(app) == before
    answer = client.post(f"{API}/identify", json=body, headers={"X-Role": "admin"})
    assert answer.status_code == 200
    assert groups(app) == {("alice", "anon-a", "anon-b", "bob")}


# --- linking a fresh anonymous id still works ------------------------------------------------


def test_the_public_key_links_fresh_anonymous_ids(make_app: AppFactory) -> None:
    """The browser client's sign-up (a new user with traits) and log-in on a second device (an
    identified user, a fresh anonymous id) keep working with the write key."""
    app = keyed_app(make_app)
    write = key(app, "ingest")
    client = app.test_client()
    visit = {"event": "$pageview", "distinct_id": "anon-1"}
    assert client.post(f"{API}/events", json={"events": [visit]}, headers=write).status_code == 200
    signup = {"distinct_id": "u1", "anon_id": "anon-1", "traits": {"plan": "free"}}
    answer = client.post(f"{API}/identify", json=signup, headers=write)
    assert answer.status_code == 200 and answer.json == {"distinct_id": "u1", "merged": True}
    assert [p[1:] for p in people(app)] == [(("anon-1", "u1"), {"plan": "free"}, True)]
    # Again (the client repeats it after a reload): the same person, nothing new.
    again = client.post(
        f"{API}/identify", json={"distinct_id": "u1", "anon_id": "anon-1"}, headers=write
    )
    assert again.status_code == 200
    # Second device: anon-2 has a history but no properties, u1 is identified.
    other = {"event": "$pageview", "distinct_id": "anon-2"}
    client.post(f"{API}/events", json={"events": [other]}, headers=write)
    login = client.post(
        f"{API}/identify", json={"distinct_id": "u1", "anon_id": "anon-2"}, headers=write
    )
    assert login.status_code == 200
    assert [p[1:] for p in people(app)] == [(("anon-1", "anon-2", "u1"), {"plan": "free"}, True)]
    # open-metrics and togo: the same links.
    assert v1(client, "setUserId", {"sessionId": "s-1", "uid": "u1"}, write).data == b"ok"
    togo = {"user_id": "u1", "anon_id": "t-1"}
    assert client.post(f"{TOGO}/identify", json=togo, headers=write).status_code == 200
    assert groups(app) == {("anon-1", "anon-2", "s-1", "t-1", "u1")}


# --- properties of identified persons: the segment escalation ---------------------------------

#: Each API's way for a visitor to set plan=pro on themselves: (target, body, refused field).
SET_PLAN: dict[str, tuple[str, dict[str, Any], str]] = {
    "native": (f"{API}/identify", {"distinct_id": "visitor", "traits": {"plan": "pro"}}, "traits"),
    "togo": (f"{TOGO}/identify", {"user_id": "visitor", "traits": {"plan": "pro"}}, "traits"),
    "openmetrics": ("setUserProps", {"sessionId": "visitor", "props": {"plan": "pro"}}, "props"),
}


def segment_flag_app(make_app: AppFactory) -> Flask:
    """A running flag for the segment "pros" (plan = pro); the visitor signed up with the
    write key and the host set their plan to free."""
    app = keyed_app(make_app)
    with app.app_context():
        save_segment("pros", filters=[{"key": "plan", "op": "eq", "value": "pro"}])
        create_experiment(
            {
                "key": "beta",
                "variants": [{"key": "control", "weight": 0.5}, {"key": "b", "weight": 0.5}],
                "conditions": {"$inSegment": "pros"},
            }
        )
        start_experiment("beta")
    client = app.test_client()
    signup = {"distinct_id": "visitor", "anon_id": "anon-v"}
    assert (
        client.post(f"{API}/identify", json=signup, headers=key(app, "ingest")).status_code == 200
    )
    with app.app_context():
        set_person_properties("visitor", set={"plan": "free"})
    return app


def beta_for_visitor(app: Flask, subject: str = "visitor") -> tuple[bool, str]:
    with app.app_context():
        result = resolve_variant("beta", subject_id=subject, consent=False)
    return result.in_experiment, result.reason


@pytest.mark.parametrize("api", list(SET_PLAN))
def test_a_visitor_cannot_put_themselves_in_a_targeted_segment(
    make_app: AppFactory, api: str
) -> None:
    app = segment_flag_app(make_app)
    assert beta_for_visitor(app) == (False, "targeting")
    before = people(app)
    target, body, field = SET_PLAN[api]
    assert_refused(send(app.test_client(), target, body, key(app, "ingest")), field)
    assert people(app) == before
    assert beta_for_visitor(app) == (False, "targeting")


@pytest.mark.parametrize("permission", ["identify", "metrics.manage"])
@pytest.mark.parametrize("api", list(SET_PLAN))
def test_an_identify_key_may_set_properties_of_identified_persons(
    make_app: AppFactory, api: str, permission: str
) -> None:
    app = segment_flag_app(make_app)
    target, body, _ = SET_PLAN[api]
    answer = send(app.test_client(), target, body, key(app, permission))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert [p[1:] for p in people(app)] == [(("anon-v", "visitor"), {"plan": "pro"}, True)]
    assert beta_for_visitor(app)[0] is True


def test_anonymous_properties_cannot_be_merged_into_an_identified_person(
    make_app: AppFactory,
) -> None:
    """The detour: set plan=pro on a fresh anonymous session (allowed), then link it to the
    identified visitor. The link would copy plan=pro in; refused."""
    app = segment_flag_app(make_app)
    with app.app_context():
        set_person_properties("visitor", set={"plan": None})  # no plan: a merge would fill it
    before = people(app)
    write = key(app, "ingest")
    client = app.test_client()
    set_plan_pro_anonymously(client, "s-9", write)
    with_session = people(app)
    assert with_session[len(before) :][0][1:] == (("s-9",), {"plan": "pro"}, False)
    assert_refused(
        v1(client, "setUserId", {"sessionId": "s-9", "uid": "visitor"}, write), "sessionId"
    )
    body = {"distinct_id": "visitor", "anon_id": "s-9"}
    assert_refused(client.post(f"{API}/identify", json=body, headers=write), "anon_id")
    assert people(app) == with_session
    assert beta_for_visitor(app) == (False, "targeting")


def test_values_the_host_recorded_before_identify_are_not_overwritten(
    make_app: AppFactory,
) -> None:
    """The host set plan=free on its new user from Python, before the browser's first identify:
    the person is not identified yet, but its recorded values are not the key holder's to
    change, directly or by a merge with a person recording another value."""
    app = segment_flag_app(make_app)
    with app.app_context():
        set_person_properties("u-2", set={"plan": "free"})
    write = key(app, "ingest")
    client = app.test_client()
    set_plan_pro_anonymously(client, "evil", write)
    before = people(app)
    pro = {"plan": "pro"}
    attempts = [
        (f"{API}/identify", {"distinct_id": "u-2", "traits": pro}, "traits.plan"),
        (f"{TOGO}/identify", {"user_id": "u-2", "anon_id": "new-1", "traits": pro}, "traits.plan"),
        ("setUserProps", {"sessionId": "u-2", "props": pro}, "props.plan"),
        (f"{API}/identify", {"distinct_id": "u-2", "anon_id": "evil"}, "anon_id"),
        (f"{API}/identify", {"distinct_id": "evil", "anon_id": "u-2"}, "anon_id"),
        ("setUserId", {"sessionId": "evil", "uid": "u-2"}, "sessionId"),
    ]
    for target, body, field in attempts:
        assert_refused(send(client, target, body, write), field)
    assert people(app) == before
    assert beta_for_visitor(app, "u-2") == (False, "targeting")
    # Adding a value, or sending the recorded one again, is the sign-up: allowed.
    signup = {"distinct_id": "u-2", "anon_id": "anon-2", "traits": {"plan": "free", "name": "Jo"}}
    assert client.post(f"{API}/identify", json=signup, headers=write).status_code == 200
    [u2] = [p for p in people(app) if "u-2" in p[1]]
    assert u2[1:] == (("anon-2", "u-2"), {"plan": "free", "name": "Jo"}, True)


def test_event_properties_never_touch_persons(make_app: AppFactory) -> None:
    """``$set`` / ``$set_once`` / ``$consent`` / ``$identify`` in an ingest batch are stored as
    event properties and nothing else: the persons stay as they were."""
    app = keyed_app(make_app)
    before = two_identified_people(app)
    hostile = {
        "$set": {"plan": "pro", "$consent": True},
        "$set_once": {"plan": "pro"},
        "$consent": True,
        "$anon_distinct_id": "alice",
    }
    batch = [
        {"event": "$identify", "distinct_id": "bob", "properties": hostile},
        {"event": "$set", "distinct_id": "alice", "properties": hostile},
    ]
    answer = app.test_client().post(
        f"{API}/events", json={"events": batch}, headers=key(app, "ingest")
    )
    assert answer.status_code == 200 and answer.json["accepted"] == 2
    assert people(app) == before


# --- $consent ----------------------------------------------------------------------------------


def test_the_public_key_cannot_overwrite_a_recorded_consent(make_app: AppFactory) -> None:
    app = keyed_app(make_app)
    before = two_identified_people(app)  # alice: "$consent": false
    with app.app_context():
        set_person_properties("anon-x", set={"$consent": False})  # an anonymous visitor's refusal
        set_person_properties("anon-y", set={"$consent": True})
    before = people(app)
    write = key(app, "ingest")
    client = app.test_client()
    flip = {"$consent": True}
    assert_refused(
        client.post(
            f"{API}/identify", json={"distinct_id": "alice", "traits": flip}, headers=write
        ),
        "traits",
    )
    assert_refused(
        v1(client, "setUserProps", {"sessionId": "anon-x", "props": flip}, write), "props.$consent"
    )
    fresh = {"distinct_id": "anon-x", "traits": flip}  # identifying anon-x with consent flipped
    assert_refused(client.post(f"{API}/identify", json=fresh, headers=write), "traits.$consent")
    # Merging the refusal into a person that consented would end it too.
    joined = {"distinct_id": "anon-y", "anon_id": "anon-x"}
    assert_refused(client.post(f"{API}/identify", json=joined, headers=write), "anon_id")
    assert people(app) == before
    # The same consent, or a person with none: nothing recorded changes, so it is allowed.
    same = {"sessionId": "anon-x", "props": {"$consent": False, "color": "red"}}
    assert v1(client, "setUserProps", same, write).data == b"ok"
    manage = key(app, "metrics.manage")
    answer = client.post(
        f"{API}/identify", json={"distinct_id": "alice", "traits": flip}, headers=manage
    )
    assert answer.status_code == 200
    assert [p[2].get("$consent") for p in people(app) if "alice" in p[1]] == [True]


# --- keys with the identify permission ---------------------------------------------------------


def test_identify_is_a_key_permission_everywhere_keys_are_made(make_app: AppFactory) -> None:
    """REST, CLI, the dashboard form and Python all create ``identify`` keys."""
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: request.headers.get("X-Role") == "admin")
    extension.subject_loader(lambda: (request.headers.get("X-Role"), {}))
    app = make_app(extension, SECRET_KEY="test-secret")
    assert "identify" in PERMISSIONS
    assert GRANTS["identify"] == {"identify", "ingest", "openmetrics"}
    assert "identify" in GRANTS["metrics.manage"] and "identify" not in GRANTS["ingest"]
    client = app.test_client()
    admin = {"X-Role": "admin"}
    rest = client.post(f"{API}/keys", json={"permission": "identify", "name": "crm"}, headers=admin)
    assert rest.status_code == 201 and rest.json["info"]["permission"] == "identify"
    cli = app.test_cli_runner().invoke(
        args=["umetrics", "keys", "create", "--permission", "identify", "--name", "sync"]
    )
    assert cli.exit_code == 0, cli.output
    page = client.get("/umetrics/admin/settings", headers=admin).get_data(as_text=True)
    assert '<option value="identify">' in page
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    form = {"csrf_token": token, "permission": "identify", "name": "form"}
    created = client.post("/umetrics/admin/settings/keys", data=form, headers=admin)
    assert created.status_code == 201
    with app.app_context():
        python_key = create_api_key("default", "identify", name="python")
        names = {k.name: k.permission for k in list_api_keys("default")}
    assert names == {
        "crm": "identify",
        "sync": "identify",
        "form": "identify",
        "python": "identify",
    }
    # An identify key writes events too, but reads nothing.
    bearer = {"Authorization": f"Bearer {python_key}"}
    batch = {"events": [{"event": "e", "distinct_id": "d"}]}
    assert client.post(f"{API}/events", json=batch, headers=bearer).status_code == 200
    assert client.get(f"{API}/query/dashboard", headers=bearer).status_code == 403


def test_the_host_code_keeps_full_power(make_app: AppFactory) -> None:
    """``identify()`` and ``set_person_properties()`` from Python are the host's own code."""
    app = keyed_app(make_app)
    two_identified_people(app)
    with app.app_context():
        identify("bob", anon_id="alice", traits={"plan": "pro"})
        set_person_properties("bob", set={"$consent": True})
    assert [p[1:] for p in people(app)] == [
        (
            ("alice", "anon-a", "bob"),
            {"email": "b@example.com", "plan": "pro", "$consent": True},
            True,
        )
    ]
