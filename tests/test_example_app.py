"""The demo app: seeding gives every collector a history, its credentials gate the API, and its
flag, pricing experiment and consent banner work end to end."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from example_app import create_app
from flask_umetrics import experiment_results, get_experiment, get_stat_series, weighted_bucket

from .demo_env import seeded_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return seeded_demo(tmp_path_factory.mktemp("demo-instance"), days=30, users=60)


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(client: FlaskClient, path: str) -> str:
    """The CSRF token of ``path``'s form for ``client``'s session (fetched with ``DNT: 1``, so
    getting it records no page view)."""
    page = client.get(path, headers={"DNT": "1"})
    found = CSRF_FIELD.search(page.get_data(as_text=True))
    assert found is not None, f"no form with a CSRF token on {path} ({page.status_code})"
    return found.group(1)


def post_form(client: FlaskClient, path: str, data: dict[str, str], page: str = "") -> Any:
    """POST ``data`` to ``path`` with the token of the form on ``page`` (default: ``path``)."""
    return client.post(path, data={**data, "csrf_token": form_token(client, page or path)})


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_stats_api_with_the_demo_credentials(demo: Flask) -> None:
    client = demo.test_client()
    response = client.get(
        "/umetrics/api/stats?scope_id=acme", headers=basic("admin@example.com", "demo")
    )
    assert response.status_code == 200
    collectors = response.json["collectors"]
    app_collectors = {
        "users_total",
        "signups_7d",
        "active_users_7d",
        "mrr",
        "paying_customers",
        "notes_total",
    }
    builtin = {
        "events.dau",
        "events.wau",
        "events.mau",
        "events.events_today",
        "events.new_persons_today",
    }
    assert {c["key"] for c in collectors} == app_collectors | builtin
    assert all(c["latest"] is not None for c in collectors)
    users = next(c for c in collectors if c["key"] == "users_total")
    assert users["latest"]["value"] == 60.0  # the live snapshot counts every seeded user

    credentials = (Path(demo.instance_path) / "demo-credentials.txt").read_text()
    key = next(
        line.split("=", 1)[1]
        for line in credentials.splitlines()
        if line.startswith("UMETRICS_API_KEY=")
    )
    with_key = client.get(
        "/umetrics/api/stats?scope_id=acme", headers={"Authorization": f"Bearer {key}"}
    )
    assert with_key.status_code == 200

    anonymous = client.get("/umetrics/api/stats?scope_id=acme")
    assert anonymous.status_code == 401 and anonymous.json["error"]["code"]
    wrong = client.get(
        "/umetrics/api/stats?scope_id=acme", headers=basic("admin@example.com", "nope")
    )
    assert wrong.status_code in (401, 403)


def test_history_has_one_reading_per_day_plus_the_live_snapshot(demo: Flask) -> None:
    with demo.app_context():
        series = get_stat_series("users_total", scope_id="acme", limit=1000)
    assert len(series) == 31
    values = [reading.value for reading in series]
    assert values == sorted(values)  # users only ever grow
    assert [r.source for r in series[:-1]] == ["demo"] * 30 and series[-1].source == "collector"


def test_pages_render(demo: Flask) -> None:
    client = demo.test_client()
    for path in ("/", "/pricing", "/signup", "/login"):
        assert client.get(path).status_code == 200, path
    assert client.get("/app").status_code == 302


def test_demo_events_cover_the_reports(demo: Flask) -> None:
    from flask_umetrics.queries.context import report_context
    from flask_umetrics.queries.top import top_events

    with demo.app_context():
        ctx = report_context(scope_id="acme")
        names = {item.key for item in top_events(ctx, limit=20).items}
    assert {"$pageview", "signed_up", "note_created"} <= names


def test_visitors_are_tracked_and_merged_at_sign_up(tmp_path: Path) -> None:
    from sqlalchemy import func, select

    from flask_umetrics.db.tables import events, person_distinct_ids

    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "UMETRICS_AUTO_MIGRATE": True}
    )
    client = app.test_client()
    assert client.get("/?utm_source=newsletter&utm_medium=email").status_code == 200
    assert client.get("/pricing").status_code == 200
    visitor = client.get_cookie("acme_visitor")
    assert visitor is not None and visitor.value.startswith("v-")
    form = {"name": "Grace", "email": "grace@example.org", "password": "correct horse"}
    assert post_form(client, "/signup", form).status_code == 302
    post_form(client, "/app", {"title": "first", "body": "hello"})
    with app.app_context(), app.extensions["umetrics"].engine.connect() as connection:
        names = connection.execute(
            select(events.c.event, events.c.distinct_id).order_by(events.c.id)
        ).all()
        people = connection.execute(
            select(func.count(person_distinct_ids.c.person_id.distinct()))
        ).scalar_one()
    # Redirects are not followed here, so no page view after the POSTs.
    assert [n for n, _ in names] == ["$pageview", "$pageview", "signed_up", "note_created"]
    assert names[0][1] == visitor.value and names[2][1] != visitor.value
    assert people == 1  # the anonymous visitor and the new user are one person

    quiet = app.test_client()
    quiet.get("/", headers={"DNT": "1"})
    with app.app_context(), app.extensions["umetrics"].engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(events)).scalar_one() == 4


# -- flags, the pricing experiment and consent ---------------------------------------------------

DEMO_USERS = 60  # the `demo` fixture's --users
WEIGHTS = [0.5, 0.5]
PRICING_VARIANTS = ["control", "annual-first"]


def users_by_plan(app: Flask) -> list[tuple[int, str, str]]:
    """(id, email, current plan) of every demo user."""
    from example_app.models import User

    with app.app_context():
        from example_app.database import db

        return [(u.id, u.email, u.plan) for u in db.session.query(User).order_by(User.id)]


def plan_at(app: Flask, moment: datetime) -> dict[int, str]:
    """Each user's plan at ``moment``, from the subscription history."""
    from example_app.database import db
    from example_app.demo_people import plan_at as workspace_plan_at
    from example_app.models import User

    with app.app_context():
        return {
            user.id: workspace_plan_at(user.organization, moment) for user in db.session.query(User)
        }


def log_in(client: FlaskClient, email: str) -> None:
    response = post_form(client, "/login", {"email": email, "password": "demo"})
    assert response.status_code == 302, response.get_data(as_text=True)


def test_pricing_experiment_has_exposures_conversions_and_no_srm(demo: Flask) -> None:
    """The results page's numbers follow from the stored exposures and events, exposures are
    spread over the running days, and the built-in lift shows."""
    from sqlalchemy import select

    from example_app.demo_experiment import UPGRADE_LIFT
    from flask_umetrics.db.tables import events, exposures

    with demo.app_context():
        experiment = get_experiment("pricing-page", scope_id="acme")
        assert experiment is not None and experiment.status == "running"
        assert experiment.started_at is not None
        results = experiment_results(experiment)
        with demo.extensions["umetrics"].engine.connect() as connection:
            exposed = connection.execute(
                select(exposures.c.subject_id, exposures.c.variant, exposures.c.ts)
            ).all()
            rows = connection.execute(
                select(events.c.distinct_id, events.c.event, events.c.ts, events.c.properties)
            ).all()
    started = int(experiment.started_at.timestamp() * 1_000_000)
    now = int(datetime.now(timezone.utc).timestamp() * 1_000_000)
    # Two weeks of a running experiment (half the fixture's 30 days), exposures all along it.
    assert 14.9 < (now - started) / 86_400e6 < 15.1
    days = {(ts - started) // 86_400_000_000 for _s, _v, ts in exposed}
    assert len(days) >= 10 and all(started <= ts <= now for _s, _v, ts in exposed)
    # Every subject got the variant its hash gives, once; a user was on Free when exposed, and
    # their pricing-page view is a tracked page view at that moment.
    assert len({subject for subject, _v, _ts in exposed}) == len(exposed)
    users = [(int(s), ts) for s, _v, ts in exposed if not s.startswith("v-")]
    visitors = [s for s, _v, _ts in exposed if s.startswith("v-")]
    assert users and visitors and all(s.startswith("v-anon-") for s in visitors)
    for subject, variant, _ts in exposed:
        assert variant == PRICING_VARIANTS[weighted_bucket("pricing-page", subject, WEIGHTS)]
    for user_id, ts in users:
        moment = datetime.fromtimestamp(ts / 1_000_000, timezone.utc)
        assert plan_at(demo, moment)[user_id] == "free"
    views = {
        (d, ts)
        for d, name, ts, props in rows
        if name == "$pageview" and props.get("$pathname") == "/pricing"
    }
    assert all((str(user_id), ts) in views for user_id, ts in users)

    variants = results["variants"]
    assert [v["key"] for v in variants] == PRICING_VARIANTS
    assert {v["key"]: v["exposures"] for v in variants} == {
        key: sum(1 for _s, v, _ts in exposed if v == key) for key in PRICING_VARIANTS
    }
    assert results["srm"]["flagged"] is False and results["srm"]["p_value"] > 0.001
    # Conversions: exposed users who upgraded after their exposure (visitors never do).
    first = {subject: (variant, ts) for subject, variant, ts in exposed}
    upgrades = [(d, ts, props) for d, name, ts, props in rows if name == "plan_upgraded"]
    assert all(not d.startswith("v-") for d, _ts, _p in upgrades)
    converted = {key: set() for key in PRICING_VARIANTS}
    revenue = dict.fromkeys(PRICING_VARIANTS, 0.0)
    for distinct_id, ts, props in upgrades:
        if distinct_id in first and ts >= first[distinct_id][1]:
            converted[first[distinct_id][0]].add(distinct_id)
            revenue[first[distinct_id][0]] += props["value"]
    for row in variants:
        assert row["total"] == len(converted[row["key"]])
        assert row["mean"] == pytest.approx(row["total"] / row["exposures"])
    exposed_users = {
        key: sum(1 for s, v, _ts in exposed if v == key and not s.startswith("v-"))
        for key in PRICING_VARIANTS
    }
    rate = {key: len(converted[key]) / exposed_users[key] for key in PRICING_VARIANTS}
    assert rate["annual-first"] >= rate["control"] and variants[1]["abs_lift"] > 0
    assert UPGRADE_LIFT > 1
    assert [m["key"] for m in results["metrics"]] == [
        "plan_upgraded",
        "value:plan_upgraded",
        "note_created",
    ]
    value = results["metrics"][1]
    assert {v["key"]: v["total"] for v in value["variants"]} == revenue
    assert results["metrics"][2]["guardrail"] is True


def test_pricing_page_renders_the_variant_of_each_user(demo: Flask) -> None:
    free = [(uid, email) for uid, email, plan in users_by_plan(demo) if plan == "free"]
    for index, variant in enumerate(PRICING_VARIANTS):
        email = next(
            email
            for uid, email in free
            if weighted_bucket("pricing-page", str(uid), WEIGHTS) == index
        )
        client = demo.test_client()
        log_in(client, email)
        html = client.get("/pricing").get_data(as_text=True)
        assert f'data-pricing-variant="{variant}"' in html
        assert ("$290<span" in html) is (variant == "annual-first")
        assert ("$29<span" in html) is (variant == "control")
    # Anonymous without consent: the control, and no consent cookie.
    anonymous = demo.test_client()
    assert 'data-pricing-variant="control"' in anonymous.get("/pricing").get_data(as_text=True)
    assert anonymous.get_cookie("umetrics_consent") is None


def test_new_editor_flag_changes_the_notes_page(demo: Flask) -> None:
    users = users_by_plan(demo)

    def editor(email: str) -> str:
        client = demo.test_client()
        log_in(client, email)
        html = client.get("/app").get_data(as_text=True)
        assert html.count("data-editor=") == 1
        return "new" if 'data-editor="new"' in html else "classic"

    def bucket(uid: int) -> int:
        return weighted_bucket("new-editor", str(uid), WEIGHTS)

    # Paying workspaces are in the rollout: their bucket decides.
    paying = [(uid, email) for uid, email, plan in users if plan != "free"]
    assert paying
    for uid, email in paying[:4]:  # each login hashes a password: a few make the point
        assert editor(email) == ("new" if bucket(uid) == 1 else "classic"), email
    # A Free workspace outside Acme is not targeted, whatever its bucket says...
    free = [(u, e) for u, e, plan in users if plan == "free" and not e.endswith("@example.com")]
    on = next((uid, email) for uid, email in free if bucket(uid) == 1)
    off = next((uid, email) for uid, email in free if bucket(uid) == 0)
    assert editor(on[1]) == editor(off[1]) == "classic"
    # ...until it upgrades through the app: then its bucket decides, and its person's plan
    # property follows the upgrade (the sign-up had set it to free).
    for uid, email in (on, off):
        client = demo.test_client()
        log_in(client, email)
        assert post_form(client, "/upgrade", {"plan": "pro"}, page="/app").status_code == 302
        assert person_properties(demo, str(uid))["plan"] == "pro"
    assert editor(on[1]) == "new"
    assert editor(off[1]) == "classic"


def person_properties(app: Flask, distinct_id: str) -> dict[str, object]:
    from sqlalchemy import select

    from flask_umetrics.db.tables import person_distinct_ids, persons

    with app.app_context(), app.extensions["umetrics"].engine.connect() as connection:
        properties = connection.execute(
            select(persons.c.properties)
            .join(person_distinct_ids, person_distinct_ids.c.person_id == persons.c.id)
            .where(person_distinct_ids.c.distinct_id == distinct_id)
        ).scalar_one()
    return dict(properties)


@pytest.fixture(scope="module")
def keyed(demo: Flask) -> Iterator[Flask]:
    """The seeded demo again, built after seed-demo wrote its cookie key (env restored after)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("UMETRICS_COOKIE_KEY_CURRENT", raising=False)
        patch.delenv("UMETRICS_COOKIE_KEY_demo", raising=False)
        yield create_app({"TESTING": True, "INSTANCE_PATH": demo.instance_path})


def test_seed_writes_a_cookie_key_that_create_app_loads(keyed: Flask) -> None:
    from example_app.consent import load_cookie_key, write_cookie_key

    assert keyed.extensions["umetrics"].cookie_keyring.current_id == "demo"
    path = Path(keyed.instance_path) / "cookie-key.txt"
    before = path.read_text()
    assert write_cookie_key(keyed.instance_path) == (str(path), False)  # kept, not rotated
    assert path.read_text() == before and oct(path.stat().st_mode & 0o777) == "0o600"

    environ: dict[str, str] = {}
    assert load_cookie_key(keyed.instance_path, environ) is True
    assert set(environ) == {"UMETRICS_COOKIE_KEY_CURRENT", "UMETRICS_COOKIE_KEY_demo"}
    assert environ["UMETRICS_COOKIE_KEY_CURRENT"] == "demo"
    assert len(base64.b64decode(environ["UMETRICS_COOKIE_KEY_demo"], validate=True)) == 32
    production = {"UMETRICS_COOKIE_KEY_CURRENT": "v7"}
    assert load_cookie_key(keyed.instance_path, production) is False
    assert production == {"UMETRICS_COOKIE_KEY_CURRENT": "v7"}
    assert load_cookie_key(str(Path(keyed.instance_path) / "missing"), {}) is False


def test_consent_banner_until_the_visitor_decides(keyed: Flask) -> None:
    banner = 'id="consent-banner"'
    for choice in (True, False):
        client = keyed.test_client()
        assert banner in client.get("/").get_data(as_text=True)
        answer = client.post("/umetrics/api/consent", json={"consent": choice})
        assert answer.status_code == 200
        assert answer.json["consent"] is choice and answer.json["cookie"] is choice
        assert (answer.json["anonymous_id"] is not None) is choice
        assert (client.get_cookie("umetrics_consent") is not None) is choice
        choice_cookie = client.get_cookie("acme_consent")
        assert choice_cookie is not None and choice_cookie.value == ("yes" if choice else "no")
        assert banner not in client.get("/").get_data(as_text=True)
        assert banner not in client.get("/pricing").get_data(as_text=True)

    assert banner not in keyed.test_client().get("/", headers={"Sec-GPC": "1"}).get_data(True)
    member = keyed.test_client()
    log_in(member, "admin@example.com")
    assert banner not in member.get("/").get_data(as_text=True)


def test_a_consenting_visitor_who_signs_up_and_upgrades_is_one_converted_subject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select

    from flask_umetrics.db.tables import exposures

    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "t1")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_t1", base64.b64encode(bytes(range(32))).decode())
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "UMETRICS_AUTO_MIGRATE": True}
    )
    assert app.extensions["umetrics"].cookie_keyring.current_id == "t1"  # the env wins
    first = app.test_cli_runner().invoke(args=["setup-flags"])
    assert first.exit_code == 0, first.output
    assert "experiment pricing-page: created and started" in first.output
    again = app.test_cli_runner().invoke(args=["setup-flags"])  # idempotent
    assert "pricing-page: exists (running)" in again.output
    assert "new-editor: exists (running)" in again.output
    client = app.test_client()
    client.post("/umetrics/api/consent", json={"consent": True})
    html = client.get("/pricing").get_data(as_text=True)
    form = {"name": "Lin", "email": "lin@example.org", "password": "correct horse"}
    assert post_form(client, "/signup", form).status_code == 302
    assert client.get("/app").status_code == 200  # carries the cookie's variant to the account
    assert post_form(client, "/upgrade", {"plan": "pro"}, page="/app").status_code == 302

    with app.app_context():
        with app.extensions["umetrics"].engine.connect() as connection:
            rows = connection.execute(
                select(exposures.c.subject_id, exposures.c.variant).where(
                    exposures.c.experiment_key == "pricing-page"
                )
            ).all()
        experiment = get_experiment("pricing-page", scope_id="acme")
        assert experiment is not None
        results = experiment_results(experiment)
    variant = next(v for v in PRICING_VARIANTS if f'data-pricing-variant="{v}"' in html)
    # The anonymous exposure (the consent cookie's id) and the account's carried one...
    assert sorted(r.variant for r in rows) == [variant, variant]
    anonymous = [r.subject_id for r in rows if r.subject_id != "1"]
    assert len(anonymous) == 1 and len(rows) == 2
    # ...and one person, who converted after the first exposure.
    by_key = {v["key"]: v for v in results["variants"]}
    assert sum(v["exposures"] for v in results["variants"]) == 1
    assert by_key[variant]["exposures"] == 1 and by_key[variant]["mean"] == 1.0
