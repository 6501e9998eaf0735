"""Dashboard People, Paths, Attribution and Settings pages with Flask's test client.

Authorization per route (anonymous 401, view-only 403 on every POST), CSRF refusals, the typed
confirmation of a delete, keys shown once, numbers and CSV equal to the REST answers.
"""

from __future__ import annotations

import csv
import html
import io
import re
from urllib.parse import urljoin, urlsplit

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_umetrics import UMetrics, create_api_key, identify, list_api_keys
from flask_umetrics.db.tables import audit_log, person_distinct_ids
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .events_data import load

ADMIN = {"X-Role": "admin"}
VIEWER = {"X-Role": "viewer"}
PAGES = ("/people", "/person?distinct_id=u1", "/paths", "/attribution", "/settings")
ROWS = [
    ("anon-1", "$pageview", "2026-03-01T10:00", {"utm_source": "google", "utm_medium": "cpc"}),
    ("u1", "signed_up", "2026-03-01T10:05"),
    ("u1", "plan_upgraded", "2026-03-01T10:10", {"value": 10}),
    ("u2", "$pageview", "2026-03-02T09:00", {"$referrer": "https://t.co/x"}),
    ("u2", "signed_up", "2026-03-02T09:01"),
    ("u2", "plan_upgraded", "2026-03-02T09:30", {"value": 20}),
    ("u3", "$pageview", "2026-03-02T12:00"),
    ("u3", "signed_up", "2026-03-02T12:05"),
    ("<script>x</script>", "<img onerror=x>", "2026-03-02T13:00"),
]
RANGE = "date_from=2026-03-01&date_to=2026-03-03"


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    extension = UMetrics()

    @extension.authorizer
    def can(permission: str, scope_id: str) -> bool:
        role = request.headers.get("X-Role")
        return role == "admin" or (role == "viewer" and permission == "metrics.view")

    extension.subject_loader(lambda: (request.headers.get("X-Role"), {}))
    app = make_app(extension, SECRET_KEY="test-secret")
    load(app, ROWS)
    with app.app_context():
        identify("u1", anon_id="anon-1", traits={"plan": "pro"})
        identify("u2", traits={"plan": "pro"})
        identify("u3", traits={"plan": "free"})
    return app


def admin_url(path: str) -> str:
    return "/umetrics/admin" + path


def csrf(client: FlaskClient, path: str = "/settings") -> str:
    page = client.get(admin_url(path), headers=ADMIN).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF field on " + path
    return found.group(1)


def csv_rows(client: FlaskClient, path: str, table: str) -> list[list[str]]:
    separator = "&" if "?" in path else "?"
    answer = client.get(admin_url(f"{path}{separator}format=csv&table={table}"), headers=ADMIN)
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(answer.get_data(as_text=True))))


def person_exists(app: Flask, distinct_id: str) -> bool:
    with app.app_context(), current_state().engine.connect() as connection:
        found = connection.execute(
            select(person_distinct_ids.c.person_id).where(
                person_distinct_ids.c.distinct_id == distinct_id
            )
        ).first()
    return found is not None


def test_anonymous_gets_401_and_viewers_see_every_page(app: Flask) -> None:
    client = app.test_client()
    for path in PAGES:
        assert client.get(admin_url(path)).status_code == 401, path
        assert client.get(admin_url(path), headers=VIEWER).status_code == 200, path
    page = client.get(admin_url("/person?distinct_id=u1"), headers=VIEWER).get_data(as_text=True)
    assert "person-delete-form" not in page and "person-export" not in page
    settings = client.get(admin_url("/settings"), headers=VIEWER).get_data(as_text=True)
    assert "create-key-form" not in settings and 'data-testid="keys-need-manage"' in settings
    assert client.get(admin_url("/person/export?distinct_id=u1"), headers=VIEWER).status_code == 403
    assert client.get(admin_url("/person?distinct_id=nobody"), headers=VIEWER).status_code == 404


def test_view_only_users_get_403_on_every_post(app: Flask) -> None:
    with app.app_context():
        key = create_api_key("default", "ingest")
    key_id = key.split("_")[1]
    token = csrf(app.test_client())
    viewer = app.test_client()
    posts = {
        "/person/delete?distinct_id=u1": {"confirm_distinct_id": "u1"},
        "/settings/keys": {"permission": "metrics.manage", "name": "mine"},
        f"/settings/keys/{key_id}/revoke": {},
    }
    for path, form in posts.items():
        answer = viewer.post(admin_url(path), data={**form, "csrf_token": token}, headers=VIEWER)
        assert answer.status_code == 403, path
        assert viewer.post(admin_url(path), data=form).status_code == 401, path
    assert person_exists(app, "u1")
    with app.app_context():
        keys = list_api_keys("default")
    assert [(k.key_id, k.permission) for k in keys] == [(key_id, "ingest")]


def test_posts_without_a_valid_csrf_token_change_nothing(app: Flask) -> None:
    with app.app_context():
        key = create_api_key("default", "metrics.view")
    key_id = key.split("_")[1]
    client = app.test_client()
    csrf(client)  # a session exists, but the forms below do not carry its token
    for token in (None, "forged"):
        extra = {"csrf_token": token} if token else {}
        posts = {
            "/person/delete?distinct_id=u1": {"confirm_distinct_id": "u1"},
            "/settings/keys": {"permission": "metrics.manage"},
            f"/settings/keys/{key_id}/revoke": {},
        }
        for path, form in posts.items():
            answer = client.post(admin_url(path), data={**form, **extra}, headers=ADMIN)
            assert answer.status_code == 400, path
            assert "The form was refused" in answer.get_data(as_text=True)
    assert person_exists(app, "u1")
    with app.app_context():
        assert [k.key_id for k in list_api_keys("default")] == [key_id]


def test_delete_needs_the_distinct_id_typed_again(app: Flask) -> None:
    client = app.test_client()
    token = csrf(client, "/person?distinct_id=anon-1")
    for typed in ("", "u1 ", "U1", "anon-1x"):
        answer = client.post(
            admin_url("/person/delete?distinct_id=u1"),
            data={"csrf_token": token, "confirm_distinct_id": typed},
            headers=ADMIN,
        )
        assert answer.status_code == 400, typed
        page = answer.get_data(as_text=True)
        assert 'data-testid="form-error"' in page and "confirm_distinct_id" in page
        assert person_exists(app, "u1") and person_exists(app, "anon-1")
    done = client.post(
        admin_url("/person/delete?distinct_id=u1"),
        data={"csrf_token": token, "confirm_distinct_id": "u1"},
        headers=ADMIN,
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/umetrics/admin/people")
    assert not person_exists(app, "u1") and not person_exists(app, "anon-1")
    listing = client.get(done.headers["Location"], headers=ADMIN).get_data(as_text=True)
    assert "Deleted the person of &#39;u1&#39;: 2 distinct ids and 3 events." in listing
    with app.app_context(), current_state().engine.connect() as connection:
        actors = connection.execute(
            select(audit_log.c.actor).where(audit_log.c.action == "person.delete")
        ).scalars()
        assert list(actors) == ["user:admin"]
    assert client.get(admin_url("/person?distinct_id=u1"), headers=ADMIN).status_code == 404


def test_export_is_the_rest_document(app: Flask) -> None:
    client = app.test_client()
    page = client.get(admin_url("/person/export?distinct_id=u1"), headers=ADMIN)
    rest = client.get("/umetrics/api/persons/u1/export", headers=ADMIN)
    assert page.status_code == rest.status_code == 200
    assert page.json == rest.json and len(page.json["events"]) == 3
    assert page.headers["Content-Disposition"] == rest.headers["Content-Disposition"]


def test_people_search_page_matches_the_rest_search(app: Flask) -> None:
    client = app.test_client()
    page = client.get(admin_url("/people?property=plan&value=pro"), headers=ADMIN)
    assert page.status_code == 200
    assert '<span data-testid="people-total">2</span>' in page.get_data(as_text=True)
    rows = csv_rows(client, "/people?property=plan&value=pro", "people")
    rest = client.get("/umetrics/api/persons?property=plan&value=pro", headers=ADMIN).json
    assert rows[0] == [
        "distinct_id",
        "distinct_ids",
        "properties",
        "first_seen",
        "last_seen",
        "events",
    ]
    assert [(r[0], int(r[1]), int(r[5])) for r in rows[1:]] == [
        (p["distinct_ids"][0], len(p["distinct_ids"]), p["events"]) for p in rest["persons"]
    ]
    assert [r[0] for r in rows[1:]] == ["u2", "anon-1"]
    by_id = client.get(admin_url("/people?distinct_id=anon-1"), headers=ADMIN)
    assert '<span data-testid="people-total">1</span>' in by_id.get_data(as_text=True)
    bad = client.get(admin_url("/people?property=a%22b&value=1"), headers=ADMIN)
    assert bad.status_code == 400 and 'data-testid="form-error"' in bad.get_data(as_text=True)
    assert "property" in bad.get_data(as_text=True)


def test_person_page_tables_equal_the_timeline(app: Flask) -> None:
    client = app.test_client()
    rest = client.get("/umetrics/api/persons/anon-1/timeline", headers=ADMIN).json
    timeline = csv_rows(client, "/person?distinct_id=anon-1", "timeline")
    assert [(r[1], r[2]) for r in timeline[1:]] == [
        (e["event"], e["distinct_id"]) for e in rest["events"]
    ]
    assert [r[1] for r in timeline[1:]] == ["plan_upgraded", "signed_up", "$pageview"]
    ids = csv_rows(client, "/person?distinct_id=anon-1", "distinct-ids")
    assert ids[1:] == [["anon-1"], ["u1"]]
    assert csv_rows(client, "/person?distinct_id=u1", "properties")[1:] == [["plan", "pro"]]
    sessions = csv_rows(client, "/person?distinct_id=u1", "sessions")
    assert [(int(r[3]), float(r[2])) for r in sessions[1:]] == [
        (s["events"], s["duration"]) for s in rest["sessions"]
    ]
    assert [int(r[3]) for r in sessions[1:]] == [3]


def test_html_in_names_and_ids_is_escaped(app: Flask) -> None:
    client = app.test_client()
    listing = client.get(admin_url("/people"), headers=ADMIN).get_data(as_text=True)
    assert "<script>x</script>" not in listing
    assert "&lt;script&gt;x&lt;/script&gt;" in listing
    person = client.get(admin_url("/person?distinct_id=%3Cscript%3Ex%3C/script%3E"), headers=ADMIN)
    text = person.get_data(as_text=True)
    assert person.status_code == 200
    assert "<img onerror" not in text and "&lt;img onerror=x&gt;" in text


def test_paths_page_equals_the_rest_answer(app: Flask) -> None:
    client = app.test_client()
    query = f"/paths?{RANGE}&start_event=signed_up&steps=2&limit=5"
    assert client.get(admin_url(query), headers=ADMIN).status_code == 200
    rest = client.get(f"/umetrics/api/query{query}", headers=ADMIN).json
    rows = csv_rows(client, query, "paths")
    assert rows[1:] == [
        [str(step["step"]), t["from"], t["to"], str(int(t["persons"]))]
        for step in rest["steps"]
        for t in step["transitions"]
    ]
    assert rows[1:] == [["1", "signed_up", "plan_upgraded", "2"]]
    assert csv_rows(client, query, "paths-step-1")[1:] == [["signed_up", "plan_upgraded", "2"]]
    bad = client.get(admin_url(f"/paths?{RANGE}&steps=0"), headers=ADMIN)
    assert bad.status_code == 400 and "steps" in bad.get_data(as_text=True)


def test_paths_page_steers_the_paths_and_draws_a_flow(app: Flask) -> None:
    client = app.test_client()
    query = f"/paths?{RANGE}&end_event=plan_upgraded&steps=2&unit=session"
    page = client.get(admin_url(query + "&exclude_lines=nothing%0Anone"), headers=ADMIN)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="um-paths-flows"' in text
    assert "chartjs-chart-sankey.min.js" in text and "<script>" not in text
    rest = client.get(
        f"/umetrics/api/query{query}&exclude=nothing&exclude=none", headers=ADMIN
    ).json
    rows = csv_rows(client, query + "&exclude_lines=nothing%0Anone", "paths")
    assert rows[1:] == [
        [str(step["step"]), t["from"], t["to"], str(int(t["persons"]))]
        for step in rest["steps"]
        for t in step["transitions"]
    ]
    bad = client.get(admin_url(f"/paths?{RANGE}&cleaning_lines=(a)%20=>%20b"), headers=ADMIN)
    assert bad.status_code == 400 and "cleaning" in bad.get_data(as_text=True)


def test_attribution_page_equals_the_rest_answer(app: Flask) -> None:
    client = app.test_client()
    query = (
        f"/attribution?{RANGE}&conversion_event=plan_upgraded&model=first_touch"
        "&value_property=value"
    )
    page = client.get(admin_url(query), headers=ADMIN)
    assert page.status_code == 200
    assert '<dd data-testid="attribution-conversions">2</dd>' in page.get_data(as_text=True)
    rest = client.get(f"/umetrics/api/query{query}", headers=ADMIN).json
    rows = csv_rows(client, query, "attribution")
    assert rows[0] == ["channel", "conversions", "value"]
    assert rows[1:] == [
        [r["key"], str(int(r["conversions"])), str(int(r["value"]))] for r in rest["rows"]
    ]
    assert rows[1:] == [["paid_search", "1", "10"], ["social", "1", "20"]]
    assert client.get(admin_url("/attribution"), headers=ADMIN).status_code == 200
    bad = client.get(admin_url("/attribution?conversion_event=x&model=nope"), headers=ADMIN)
    assert bad.status_code == 400 and "model" in bad.get_data(as_text=True)


def test_a_new_key_is_shown_once_and_works_until_revoked(app: Flask) -> None:
    client = app.test_client()
    token = csrf(client)
    created = client.post(
        admin_url("/settings/keys"),
        data={"csrf_token": token, "name": "<b>ci</b>", "permission": "metrics.view"},
        headers=ADMIN,
    )
    assert created.status_code == 201
    page = created.get_data(as_text=True)
    key = re.search(r'data-testid="created-key">([^<]+)<', page)
    assert key is not None
    raw = key.group(1)
    assert "&lt;b&gt;ci&lt;/b&gt;" in page and "<b>ci</b>" not in page
    assert all(raw not in value for value in created.headers.getlist("Set-Cookie"))
    assert created.headers["Cache-Control"] == "no-store"
    bearer = {"Authorization": f"Bearer {raw}"}
    assert client.get("/umetrics/api/query/dashboard", headers=bearer).status_code == 200
    later = client.get(admin_url("/settings"), headers=ADMIN).get_data(as_text=True)
    assert raw not in later
    key_id = raw.split("_")[1]
    assert csv_rows(client, "/settings", "api-keys")[1][:3] == ["<b>ci</b>", "metrics.view", key_id]
    assert csv_rows(client, "/settings", "write-keys")[1:] == []
    revoked = client.post(
        admin_url(f"/settings/keys/{key_id}/revoke"), data={"csrf_token": token}, headers=ADMIN
    )
    assert revoked.status_code == 302
    assert client.get("/umetrics/api/query/dashboard", headers=bearer).status_code == 401
    again = client.post(
        admin_url(f"/settings/keys/{key_id}/revoke"), data={"csrf_token": token}, headers=ADMIN
    )
    assert again.status_code == 404
    assert csv_rows(client, "/settings", "api-keys")[1:] == []


def test_create_key_refuses_a_bad_permission(app: Flask) -> None:
    client = app.test_client()
    token = csrf(client)
    answer = client.post(
        admin_url("/settings/keys"),
        data={"csrf_token": token, "permission": "root"},
        headers=ADMIN,
    )
    assert answer.status_code == 400
    assert "permission" in answer.get_data(as_text=True)
    with app.app_context():
        assert list_api_keys("default") == []


def test_settings_show_config_but_never_secrets(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="  # base64 of 32 bytes
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "v1")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_v1", secret)
    monkeypatch.delenv("UMETRICS_ENCRYPTION_KEY_CURRENT", raising=False)
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: True)
    app = make_app(
        extension,
        SECRET_KEY="test-secret",
        UMETRICS_RETENTION_EVENTS_DAYS=90,
        UMETRICS_CONSENT_REQUIRED=False,
    )
    client = app.test_client()
    page = client.get(admin_url("/settings")).get_data(as_text=True)
    assert secret not in page and "test-secret" not in page
    config = {row[0]: row[1] for row in csv_rows(client, "/settings", "config")[1:]}
    assert config["UMETRICS_RETENTION_EVENTS_DAYS"] == "90"
    assert config["UMETRICS_CONSENT_REQUIRED"] == "false"
    assert config["UMETRICS_COOKIE_NAME"] == "umetrics_consent"
    assert config["UMETRICS_RESPECT_DNT"] == "true"
    secrets = {row[0]: row[2] for row in csv_rows(client, "/settings", "secrets")[1:]}
    assert secrets["Consent cookie key"] == "yes"
    assert secrets["Encryption key (GA4 secrets)"] == "no"


ODD_IDS = [
    "a/b",
    "../settings",
    "x/../../people",
    "q?scope_id=other&x=1",
    "h#frag",
    "50%",
    "100%25",
    "sp ace ",
    "ünï/cødé ✓",
    "/lead",
    "trail/",
    "u9/delete",
    "back\\slash",
]


def _links(page: str, testid: str) -> dict[str, str]:
    """``{text: URL}`` of the links marked ``data-testid=testid``, resolved as a browser does
    (``urljoin`` removes ``.`` and ``..`` segments)."""
    found = re.findall(r'<a href="([^"]+)" data-testid="' + testid + r'">([^<]*)</a>', page)
    return {html.unescape(text): _browser_url(html.unescape(href)) for href, text in found}


def _browser_url(href: str) -> str:
    url = urlsplit(urljoin("http://localhost/umetrics/admin/people", href))
    return url.path + ("?" + url.query if url.query else "")


def test_any_distinct_id_opens_and_deletes_from_the_ui(app: Flask) -> None:
    """Ids with path, query, fragment and percent characters, spaces and unicode: each listed
    person's link opens that person's page, and the page's delete form deletes exactly them."""
    load(app, [(distinct_id, "odd", "2026-03-02T14:00") for distinct_id in ODD_IDS])
    client = app.test_client()
    listing = client.get(admin_url("/people?limit=50"), headers=ADMIN).get_data(as_text=True)
    links = _links(listing, "person-link")
    assert set(ODD_IDS) <= set(links)
    for distinct_id in ODD_IDS:
        href = links[distinct_id]
        assert href.startswith("/umetrics/admin/person?"), href
        page = client.get(href, headers=ADMIN)
        assert page.status_code == 200, distinct_id
        text = page.get_data(as_text=True)
        ids = csv_rows(client, href.removeprefix("/umetrics/admin"), "distinct-ids")
        assert ids[1:] == [[distinct_id]]
        action = re.search(r'<form class="um-form" method="post" action="([^"]+)"', text)
        assert action, distinct_id
        token = re.search(r'name="csrf_token" value="([^"]+)"', text)
        assert token
        done = client.post(
            _browser_url(html.unescape(action.group(1))),
            data={"csrf_token": token.group(1), "confirm_distinct_id": distinct_id},
            headers=ADMIN,
        )
        assert done.status_code == 302, (distinct_id, done.get_data(as_text=True)[:300])
        assert not person_exists(app, distinct_id)
    assert all(person_exists(app, kept) for kept in ("u1", "u2", "u3", "anon-1"))


def test_old_person_links_redirect(app: Flask) -> None:
    client = app.test_client()
    answer = client.get(admin_url("/people/u1?scope_id=default"), headers=VIEWER)
    assert answer.status_code == 301
    assert answer.headers["Location"] == "/umetrics/admin/person?scope_id=default&distinct_id=u1"
    missing = client.get(admin_url("/person"), headers=VIEWER)
    assert missing.status_code == 400 and "distinct_id" in missing.get_data(as_text=True)


def test_paths_flow_columns_count_back_from_the_end_event() -> None:
    from flask_umetrics.admin.pages.paths import flows

    result = {
        "end_event": "b",
        "steps": [
            {"step": 1, "transitions": [{"from": "a", "to": "b", "persons": 2}]},
            {"step": 2, "transitions": [{"from": "b", "to": "a", "persons": 1}]},
            {"step": 3, "transitions": []},
        ],
    }
    assert flows(result) == {
        "flows": [{"from": "2|a", "to": "3|b", "flow": 2}, {"from": "1|b", "to": "2|a", "flow": 1}],
        "labels": {"2|a": "a", "3|b": "b", "1|b": "b"},
        "columns": {"2|a": 1, "3|b": 2, "1|b": 0},  # shifted left: step 3 is empty
    }
