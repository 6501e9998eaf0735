"""The Experiments pages with Flask's test client: who may see and change what, the form's
validation (400 naming the field), create / edit / lifecycle through the store with the user as
audit actor, and a results page whose numbers and CSV equal the REST answer."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select

from flask_umetrics import (
    UMetrics,
    create_experiment,
    get_experiment,
    start_experiment,
    update_experiment,
)
from flask_umetrics.db.tables import audit_log, exposures

from .admin_html import as_number, csrf_token, table_cells
from .conftest import AppFactory
from .events_data import load

ADMIN = "/umetrics/admin"
T0 = 1_780_000_000_000_000  # µs


class Users:
    """Who is logged in: ``admin`` may manage, ``viewer`` may only view, None is nobody."""

    def __init__(self) -> None:
        self.current: str | None = "admin"

    def allows(self, permission: str, scope_id: str) -> bool:
        if self.current == "admin":
            return True
        return self.current == "viewer" and permission == "metrics.view"


@pytest.fixture
def users() -> Users:
    return Users()


@pytest.fixture
def app(make_app: AppFactory, users: Users) -> Flask:
    extension = UMetrics()
    extension.authorizer(users.allows)
    extension.subject_loader(lambda: (users.current, {}))
    return make_app(extension, SECRET_KEY="admin-experiments-test")


def form_body(client: FlaskClient, page: str, **fields: Any) -> dict[str, Any]:
    html = client.get(ADMIN + page).get_data(as_text=True)
    return {"csrf_token": csrf_token(html), **fields}


NEW = {
    "key": "checkout",
    "kind": "experiment",
    "name": "One-page checkout",
    "variant_key": ["control", "one-page", "two-page", ""],
    "variant_weight": ["2", "1", "1", ""],
    "variant_name": ["", "One page", "", ""],
    "coverage": "0.5",
    "conditions": '{"plan": {"$nin": ["pro"]}}',
    "metric_role": ["goal", "guardrail", "secondary"],
    "metric_kind": ["conversion", "conversion", "mean"],
    "metric_event": ["purchase", "support_ticket", "purchase"],
    "metric_property": ["", "", "amount"],
    "metric_window": ["86400", "", ""],
    "metric_filters": ["", "", ""],
    "metric_key": ["", "", ""],
}


def test_viewers_see_no_edit_controls_and_cannot_post(app: Flask, users: Users) -> None:
    with app.app_context():
        create_experiment({"key": "exp", "variants": [{"key": "a"}, {"key": "b"}]})
    client = app.test_client()
    users.current = None
    assert client.get(ADMIN + "/experiments").status_code == 401
    users.current = "viewer"
    listing = client.get(ADMIN + "/experiments")
    assert listing.status_code == 200
    html = listing.get_data(as_text=True)
    assert 'data-testid="experiment-exp"' in html and "New experiment" not in html
    results = client.get(ADMIN + "/experiments/exp").get_data(as_text=True)
    assert 'data-testid="action-start"' not in results
    token = csrf_token(client.get(ADMIN + "/experiments/new").get_data(as_text=True))
    refused = client.post(ADMIN + "/experiments/exp/start", data={"csrf_token": token})
    assert refused.status_code == 403
    assert (
        client.post(ADMIN + "/experiments/new", data=dict(NEW, csrf_token=token)).status_code == 403
    )
    users.current = "admin"
    no_token = client.post(ADMIN + "/experiments/exp/start", data={})
    assert no_token.status_code == 400 and "form was refused" in no_token.get_data(as_text=True)
    with app.app_context():
        assert get_experiment("exp").status == "draft"  # type: ignore[union-attr]
    assert client.get(ADMIN + "/experiments/nope").status_code == 404


def test_create_edit_and_lifecycle_through_the_forms(app: Flask) -> None:
    client = app.test_client()
    created = client.post(
        ADMIN + "/experiments/new", data=form_body(client, "/experiments/new", **NEW)
    )
    assert created.status_code == 302
    assert created.headers["Location"].endswith("/umetrics/admin/experiments/checkout")
    with app.app_context():
        stored = get_experiment("checkout")
    assert stored is not None and stored.status == "draft"
    assert [(v.key, v.weight, v.name) for v in stored.variants] == [
        ("control", 2.0, ""),
        ("one-page", 1.0, "One page"),
        ("two-page", 1.0, ""),
    ]
    assert stored.coverage == 0.5 and stored.conditions == {"plan": {"$nin": ["pro"]}}
    assert [(m.key, m.kind, m.guardrail, m.window_seconds) for m in stored.metrics] == [
        ("purchase", "conversion", False, 86400),
        ("support_ticket", "conversion", True, None),
        ("amount:purchase", "mean", False, None),
    ]

    edit_page = client.get(ADMIN + "/experiments/checkout/edit").get_data(as_text=True)
    assert 'name="variant_weight" value="2"' in edit_page
    token = csrf_token(edit_page)
    # The same values again: nothing is written.
    unchanged = dict(NEW, csrf_token=token, bucket_version="1", seed="checkout")
    unchanged.pop("key"), unchanged.pop("kind")
    assert client.post(ADMIN + "/experiments/checkout/edit", data=unchanged).status_code == 302
    with app.app_context():
        assert get_experiment("checkout").revision == 1  # type: ignore[union-attr]
    changed = dict(
        unchanged,
        variant_key=["control", "one-page", ""],
        variant_weight=["1", "3", ""],
        variant_name=["", "One page", ""],
        conditions="",
    )
    saved = client.post(ADMIN + "/experiments/checkout/edit", data=changed)
    assert saved.status_code == 302
    with app.app_context():
        stored = get_experiment("checkout")
    assert stored is not None and stored.revision == 2
    assert [(v.key, v.weight) for v in stored.variants] == [("control", 1.0), ("one-page", 3.0)]
    assert stored.conditions is None and stored.weights == [0.25, 0.75]
    flashed = client.get(ADMIN + "/experiments/checkout").get_data(as_text=True)
    assert "Saved &#39;checkout&#39; (conditions, variants)." in flashed

    def act(name: str, **fields: str) -> None:
        body = form_body(client, "/experiments/checkout", **fields)
        assert client.post(f"{ADMIN}/experiments/checkout/{name}", data=body).status_code == 302

    act("start")
    with app.app_context():
        assert get_experiment("checkout").status == "running"  # type: ignore[union-attr]
    act("start")  # already running: a flash, not an error page
    assert "is already running" in client.get(ADMIN + "/experiments/checkout").get_data(
        as_text=True
    )
    act("pause")
    act("ship", variant="one-page")
    with app.app_context():
        stored = get_experiment("checkout")
    assert stored is not None and (stored.status, stored.shipped_variant) == ("stopped", "one-page")
    act("kill")
    with app.app_context():
        assert get_experiment("checkout").killed is True  # type: ignore[union-attr]
        engine = app.extensions["umetrics"].engine
        with engine.connect() as connection:
            audit = connection.execute(
                select(audit_log.c.action, audit_log.c.actor).order_by(audit_log.c.id)
            ).all()
    assert [tuple(row) for row in audit] == [
        ("experiment.create", "user:admin"),
        ("experiment.update", "user:admin"),
        ("experiment.start", "user:admin"),
        ("experiment.pause", "user:admin"),
        ("experiment.ship", "user:admin"),
        ("experiment.kill", "user:admin"),
    ]
    act("delete")
    with app.app_context():
        assert get_experiment("checkout") is None


def test_the_analysis_settings_through_the_forms(app: Flask) -> None:
    client = app.test_client()
    blank = client.get(ADMIN + "/experiments/new").get_data(as_text=True)
    assert 'name="mde" id="exp-mde" value="0.05"' in blank and "One-sided test" in blank
    analysis = {"one_sided": "true", "mde": "0.1", "min_bucket_version": "0"}
    created = client.post(
        ADMIN + "/experiments/new",
        data=form_body(client, "/experiments/new", **NEW, **analysis),
    )
    assert created.status_code == 302
    with app.app_context():
        stored = get_experiment("checkout")
    assert stored is not None and stored.has_experiment
    rule = stored.experiment_rule
    assert (rule.one_sided, rule.mde, rule.min_bucket_version) == (True, 0.1, 0)

    # The edit form shows them; a rollout rule added through the API survives an edit.
    with app.app_context():
        rollout = {"type": "rollout", "variant": "one-page", "coverage": 0.1}
        update_experiment("checkout", {"rules": [rollout, rule.model_dump()]})
    edit_page = client.get(ADMIN + "/experiments/checkout/edit").get_data(as_text=True)
    assert 'id="exp-one-sided" checked' in edit_page
    assert 'name="mde" id="exp-mde" value="0.1"' in edit_page
    base = dict(NEW, csrf_token=csrf_token(edit_page), bucket_version="2", seed="checkout")
    base.pop("key"), base.pop("kind")
    edited = dict(base, mde="0.02", min_bucket_version="2")  # one_sided unticked
    assert client.post(ADMIN + "/experiments/checkout/edit", data=edited).status_code == 302
    with app.app_context():
        stored = get_experiment("checkout")
    assert stored is not None and stored.bucket_version == 2
    assert [r.type for r in stored.rules] == ["rollout", "experiment"]
    rule = stored.experiment_rule
    assert (rule.one_sided, rule.mde, rule.min_bucket_version) == (False, 0.02, 2)
    flashed = client.get(ADMIN + "/experiments/checkout").get_data(as_text=True)
    assert "Saved &#39;checkout&#39; (bucket_version, rules)." in flashed
    # A bad value names its field and keeps what was typed.
    bad = client.post(ADMIN + "/experiments/checkout/edit", data=dict(edited, mde="0"))
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert 'data-testid="field-error-mde"' in html and "greater than 0" in html
    assert 'name="mde" id="exp-mde" value="0"' in html


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"conditions": "{plan"}, "conditions", "is not valid JSON"),
        ({"conditions": '{"plan": {"$bogus": 1}}'}, "conditions", ""),
        ({"variant_key": ["a", "a", "b", ""]}, "variants", "variant keys must be distinct"),
        ({"variant_weight": ["-1", "1", "1", ""]}, "variants.0.weight", "greater than or equal"),
        ({"variant_key": ["a b", "c", "", ""]}, "variants.0.key", "pattern"),
        ({"metric_kind": ["mean", "conversion", "mean"]}, "metrics.0", "needs 'property'"),
        ({"coverage": "2"}, "coverage", "less than or equal to 1"),
        ({"key": ""}, "key", "at least 1 character"),
        ({"start_at": "2026-05-02T00:00", "stop_at": "2026-05-01T00:00"}, "stop_at", "later"),
        (
            {"namespace_name": "ns", "namespace_start": "0.5", "namespace_end": "0.2"},
            "namespace",
            "",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    app: Flask, change: dict[str, Any], field: str, message: str
) -> None:
    client = app.test_client()
    body = form_body(client, "/experiments/new", **dict(NEW, **change))
    answer = client.post(ADMIN + "/experiments/new", data=body)
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert f'data-testid="field-error-{field}' in html
    assert message.replace("'", "&#39;") in html
    assert 'value="One-page checkout"' in html  # what was typed is kept
    with app.app_context():
        assert get_experiment("checkout") is None


def test_a_taken_key_is_a_conflict_on_the_form(app: Flask) -> None:
    with app.app_context():
        create_experiment({"key": "checkout", "variants": [{"key": "a"}, {"key": "b"}]})
    client = app.test_client()
    answer = client.post(
        ADMIN + "/experiments/new", data=form_body(client, "/experiments/new", **NEW)
    )
    assert answer.status_code == 409
    assert "already exists in this scope" in answer.get_data(as_text=True)


def seed_results(
    app: Flask, plan: tuple[tuple[str, int, int], ...] = (("control", 40, 10), ("b", 10, 6))
) -> None:
    """By default control: 40 exposed, 10 buy; b: 10 exposed, 6 buy (far from 50/50: SRM)."""
    rows: list[dict[str, Any]] = []
    events: list[tuple[Any, ...]] = []
    n = 0
    for variant, size, converted in plan:
        for i in range(size):
            n += 1
            ts = T0 + n * 1_000_000
            rows.append(
                {
                    "scope_id": "default",
                    "experiment_key": "exp",
                    "bucket_version": 1,
                    "subject_id": f"s{n}",
                    "variant": variant,
                    "ts": ts,
                }
            )
            if i < converted:
                events.append((f"s{n}", "buy", "2026-06-01T00:00", {"amount": 10}))
    with app.app_context():
        create_experiment(
            {
                "key": "exp",
                "variants": [{"key": "control"}, {"key": "b"}],
                "metrics": [
                    {"event": "buy"},
                    {"event": "buy", "kind": "mean", "property": "amount", "guardrail": True},
                ],
            }
        )
        start_experiment("exp")
        with app.extensions["umetrics"].engine.begin() as connection:
            connection.execute(insert(exposures), rows)
    load(app, events)


@pytest.mark.parametrize(
    ("plan", "kind", "css"),
    [
        ((("control", 60, 15), ("b", 60, 40)), "win", "um-win"),
        ((("control", 60, 40), ("b", 60, 15)), "loss", "um-lose"),
        ((("control", 60, 20), ("b", 60, 21)), "inconclusive", ""),
    ],
)
def test_results_page_verdict_and_coloured_cells(
    app: Flask, plan: tuple[tuple[str, int, int], ...], kind: str, css: str
) -> None:
    seed_results(app, plan)
    client = app.test_client()
    api = client.get("/umetrics/api/experiments/exp/results").json
    [verdict] = api["verdicts"]
    assert verdict["kind"] == kind and verdict["variant"] == "b"
    assert api["sample_size"]["per_variant"] > 60  # far from planned: keep running
    advice = "consider stopping b" if kind == "loss" else "keep running"
    assert advice in verdict["text"]
    html = client.get(ADMIN + "/experiments/exp").get_data(as_text=True)
    assert f'data-testid="verdict-b" data-kind="{kind}">{verdict["text"]}</p>' in html
    assert 'data-testid="sample-size">Planned sample: ' in html
    if css:
        outcome = css.removeprefix("um-")
        assert f'<tr data-outcome="{outcome}">' in html
        # rel lift, its interval and p-value, in the goal and the guardrail (the same events)
        assert html.count(f'class="um-num {css}"') == 8
    else:
        assert "data-outcome" not in html and "um-win" not in html and "um-lose" not in html


def test_results_page_shows_the_api_numbers(app: Flask) -> None:
    seed_results(app)
    client = app.test_client()
    api = client.get("/umetrics/api/experiments/exp/results").json
    page = client.get(ADMIN + "/experiments/exp")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    goal = table_cells(html, "metric-0")
    assert [row[0] for row in goal] == ["control", "b"]
    assert [as_number(row[1]) for row in goal] == [40, 10]
    assert [as_number(row[3]) for row in goal] == [0.25, 0.6]
    assert as_number(goal[1][4]) == pytest.approx(0.35)
    for row, variant in zip(goal, api["variants"], strict=True):
        assert as_number(row[1]) == variant["exposures"]
        assert as_number(row[3]) == variant["mean"]
        assert as_number(row[4]) == variant["abs_lift"]
        assert as_number(row[8]) == variant["p_value"]
        assert as_number(row[11]) == variant["rel_p_value"]
        assert as_number(row[12]) == variant["chance_to_win"]
        ci = variant["ci"] or [None, None]
        assert [as_number(row[6]), as_number(row[7])] == ci
        rel_ci = variant["rel_ci"] or [None, None]
        assert [as_number(row[9]), as_number(row[10])] == rel_ci
    assert goal[0][6] == "" and api["variants"][0]["ci"] is None  # control has no interval
    assert api["srm"]["flagged"] is True
    assert 'data-testid="srm-warning"' in html
    # The verdict is the API's sentence; with a mismatched split it is the SRM warning.
    assert api["verdicts"][0]["kind"] == "srm"
    assert 'data-kind="srm"' in html and api["verdicts"][0]["text"] in html
    guardrail = table_cells(html, "metric-1")
    assert [as_number(row[3]) for row in guardrail] == [2.5, 6.0]  # 10 of 40 x 10; 6 of 10 x 10

    csv = client.get(ADMIN + "/experiments/exp?format=csv&table=ci-0")
    assert csv.mimetype == "text/csv"
    lo, hi = api["variants"][1]["ci"]
    assert csv.get_data(as_text=True) == (
        f"variant,ci_low,ci_high\r\ncontrol,,\r\nb,{lo!r},{hi!r}\r\n"
    )
    exposures_csv = client.get(ADMIN + "/experiments/exp?format=csv&table=exposures")
    assert exposures_csv.get_data(as_text=True) == "variant,exposures\r\ncontrol,40\r\nb,10\r\n"
    listing = client.get(ADMIN + "/experiments?format=csv&table=experiments")
    assert listing.get_data(as_text=True) == (
        "key,name,kind,status,effective_status,variants,exposures\r\n"
        'exp,exp,experiment,running,running,"control 50%, b 50%",50\r\n'
    )

    sequential = client.get(ADMIN + "/experiments/exp?sequential=true&alpha=0.1")
    api_seq = client.get("/umetrics/api/experiments/exp/results?sequential=true&alpha=0.1").json
    rows = table_cells(sequential.get_data(as_text=True), "metric-0")
    assert [as_number(rows[1][13]), as_number(rows[1][14])] == api_seq["variants"][1][
        "sequential_ci"
    ]
    bad = client.get(ADMIN + "/experiments/exp?alpha=0.9")
    assert bad.status_code == 400 and "alpha" in bad.get_data(as_text=True)


def test_a_page_without_exposures_says_why(app: Flask) -> None:
    with app.app_context():
        create_experiment(
            {
                "key": "quiet",
                "kind": "flag",
                "rules": [{"type": "rollout", "variant": "on", "coverage": 0.5}],
            }
        )
    html = app.test_client().get(ADMIN + "/experiments/quiet").get_data(as_text=True)
    warning = html[html.index('data-testid="no-exposures"') :]
    warning = warning[: warning.index("</div>")]
    assert "not running (status draft)" in warning
    assert "no experiment rule" in warning
    # This app has a subject loader but neither a consent loader nor a cookie key.
    assert "No consent" in warning and "@umetrics.consent_loader" in warning
    assert "No consent-cookie key" in warning
    assert "No @umetrics.subject_loader" not in warning
    with app.app_context():
        start_experiment("quiet")
    running = app.test_client().get(ADMIN + "/experiments/quiet").get_data(as_text=True)
    assert "not running" not in running and "no experiment rule" in running


def test_a_page_with_exposures_has_no_such_warning(app: Flask) -> None:
    seed_results(app)
    html = app.test_client().get(ADMIN + "/experiments/exp").get_data(as_text=True)
    assert 'data-testid="no-exposures"' not in html


def test_the_results_page_names_a_flag_as_one_and_links_to_its_feature(app: Flask) -> None:
    """Experiments and flags are features too: their page links to the feature's rule editor
    (the feature page already links back to the results), and a flag is not called an
    experiment."""
    with app.app_context():
        create_experiment({"key": "beta", "kind": "flag"})
        create_experiment({"key": "trial", "variants": [{"key": "control"}, {"key": "long"}]})
    client = app.test_client()
    for key, title in (("beta", "Flag beta"), ("trial", "Experiment trial")):
        html = client.get(f"{ADMIN}/experiments/{key}").get_data(as_text=True)
        assert f"<h1>{title}</h1>" in html
        link = f'<a href="{ADMIN}/features/{key}" data-testid="experiment-feature">'
        assert link in html
        feature = client.get(f"{ADMIN}/features/{key}").get_data(as_text=True)
        assert f'href="{ADMIN}/experiments/{key}"' in feature
