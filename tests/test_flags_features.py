"""Features with rules (issue 15): overrides, force and rollout rules, the experiment as a rule,
typed values, URL force for QA, GrowthBook's subject ids, and the in-place migration."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask, jsonify, request
from growthbook import GrowthBook
from growthbook.core import gbhash
from sqlalchemy import func, select

from flask_umetrics import (
    UMetrics,
    create_api_key,
    create_experiment,
    get_value,
    get_variant,
    resolve_variant,
    set_killed,
    set_person_properties,
    start_experiment,
    update_experiment,
)
from flask_umetrics.db import migrate
from flask_umetrics.db.tables import assignments, experiments, exposures
from flask_umetrics.flags.decide import Resolution
from flask_umetrics.flags.store import get_experiment
from flask_umetrics.queries.segments import save_segment

from .conftest import AppFactory

BASE = "/umetrics/api"
SUBJECTS = [f"user-{i}" for i in range(2000)]
ON = {"variant": "on"}


def resolve(app: Flask, subject: Any, key: str, *, consent: bool = False, **kw: Any) -> Resolution:
    with app.app_context():
        return resolve_variant(key, subject_id=subject, consent=consent, **kw)


def feature(app: Flask, key: str = "new-nav", **definition: Any) -> None:
    with app.app_context():
        create_experiment({"key": key, "kind": "flag", **definition})
        start_experiment(key)


def rows(app: Flask, table: Any) -> int:
    with app.extensions["umetrics"].engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def on_for(app: Flask, key: str) -> set[str]:
    return {s for s in SUBJECTS if resolve(app, s, key).variant == "on"}


# -- rollout ----------------------------------------------------------------------------------


def test_rollout_10_to_25_percent_keeps_the_first_10_percent_on(make_app: AppFactory) -> None:
    app = make_app()
    rule = {"type": "rollout", "variant": "on", "coverage": 0.10}
    feature(app, rules=[rule])
    first = on_for(app, "new-nav")
    # GrowthBook's own hash (growthbook-python) decides who is in: hash <= coverage.
    assert first == {s for s in SUBJECTS if gbhash("new-nav", s, 2) <= 0.10}
    assert 150 < len(first) < 250
    with app.app_context():
        update_experiment("new-nav", {"rules": [{**rule, "coverage": 0.25}]})
    second = on_for(app, "new-nav")
    assert first < second
    assert second == {s for s in SUBJECTS if gbhash("new-nav", s, 2) <= 0.25}
    outside = next(s for s in SUBJECTS if s not in second)
    assert (resolve(app, outside, "new-nav").variant, resolve(app, outside, "new-nav").reason) == (
        "off",
        "default",
    )
    inside = resolve(app, next(iter(first)), "new-nav", consent=True)
    assert (inside.variant, inside.reason, inside.in_experiment) == ("on", "rollout", False)
    # A rollout is not an experiment: nothing stored, no exposure, even with consent.
    assert rows(app, assignments) == rows(app, exposures) == 0


def test_rollout_hashes_on_the_attribute_and_seed_it_names(make_app: AppFactory) -> None:
    app = make_app()
    rule = {
        "type": "rollout",
        "variant": "on",
        "coverage": 0.5,
        "hash_attribute": "company",
        "seed": "acme-wide",
    }
    feature(app, rules=[rule])
    companies = [f"company-{i}" for i in range(200)]
    expected = {c for c in companies if gbhash("acme-wide", c, 2) <= 0.5}
    got = {
        c
        for c in companies
        if resolve(app, "same-user", "new-nav", attributes={"company": c}).variant == "on"
    }
    assert got == expected and 60 < len(got) < 140
    assert resolve(app, "same-user", "new-nav").reason == "default"  # no company: not in


# -- force rules, overrides, kill switch ------------------------------------------------------


def test_force_rule_serves_the_matching_subjects_even_without_an_id(make_app: AppFactory) -> None:
    app = make_app()
    feature(app, rules=[{"type": "force", "condition": {"country": "DE"}, "variant": "on"}])
    german = resolve(app, None, "new-nav", attributes={"country": "DE"})
    assert (german.variant, german.reason, german.enabled, german.value) == (
        "on",
        "force",
        True,
        True,
    )
    french = resolve(app, "u1", "new-nav", attributes={"country": "FR"})
    assert (french.variant, french.reason, french.value) == ("off", "default", False)


def test_an_override_list_beats_every_rule(make_app: AppFactory) -> None:
    app = make_app()
    with app.app_context():
        set_person_properties("beta-anna", {"plan": "beta"})
        save_segment("betas", filters=[{"key": "plan", "op": "eq", "value": "beta"}])
    feature(
        app,
        variants=[{"key": "off", "weight": 0}, {"key": "on", "weight": 1}],
        rules=[
            {"type": "force", "variant": "off"},  # everyone off ...
            {"type": "experiment"},  # ... so the experiment (all "on") is never reached
        ],
        overrides=[
            {"subject_ids": ["qa-1", "qa-2"], "variant": "on"},
            {"segment": "betas", "variant": "on"},
        ],
    )
    assert resolve(app, "someone", "new-nav").reason == "force"
    for subject in ("qa-1", "qa-2", "beta-anna"):
        served = resolve(app, subject, "new-nav", consent=True)
        assert (served.variant, served.reason, served.in_experiment) == ("on", "override", False)
    assert rows(app, assignments) == rows(app, exposures) == 0
    # Only the kill switch beats an override.
    with app.app_context():
        set_killed("new-nav", True)
    assert (resolve(app, "qa-1", "new-nav").variant, resolve(app, "qa-1", "new-nav").reason) == (
        "off",
        "killed",
    )


def test_segment_conditions_of_rules_are_asked_without_consent(make_app: AppFactory) -> None:
    app = make_app()
    with app.app_context():
        set_person_properties("beta-anna", {"plan": "beta"})
        save_segment("betas", filters=[{"key": "plan", "op": "eq", "value": "beta"}])
    for key, operator in (("in", "$inSegment"), ("out", "$notInSegment")):
        feature(app, key, rules=[{"type": "force", "condition": {operator: "betas"}, **ON}])
    assert [resolve(app, s, "in").reason for s in ("beta-anna", "bob", None)] == [
        "force",
        "default",
        "default",  # no subject: a member of no segment
    ]
    assert [resolve(app, s, "out").reason for s in ("beta-anna", "bob", None)] == [
        "default",
        "force",
        "force",
    ]


def test_only_definitions_that_can_ask_for_segments_look_them_up(make_app: AppFactory) -> None:
    app = make_app()
    definitions: dict[str, dict[str, Any]] = {
        "flat": {"conditions": {"country": {"$in": ["DE"]}, "plan": "pro"}},
        "ids": {"overrides": [{"subject_ids": ["qa"], **ON}]},
        "flat-rule": {"rules": [{"type": "force", "condition": {"plan": "pro"}, **ON}]},
        "or": {"conditions": {"$or": [{"plan": "pro"}, {"plan": "team"}]}},
        "segment": {"conditions": {"$inSegment": "betas"}},
        "rule": {"rules": [{"type": "force", "condition": {"$inSegment": "betas"}, **ON}]},
        "override": {"overrides": [{"segment": "betas", **ON}]},
    }
    with app.app_context():
        for key, definition in definitions.items():
            create_experiment({"key": key, "kind": "flag", **definition})
        found = {key: get_experiment(key) for key in definitions}
    reads = {key: e.reads_segments for key, e in found.items() if e is not None}
    assert len(reads) == len(definitions)
    assert [key for key, asks in reads.items() if asks] == ["or", "segment", "rule", "override"]


def test_outcomes_are_built_once_per_definition_and_change_with_it(make_app: AppFactory) -> None:
    app = make_app()
    variants = [{"key": "off", "value": "light"}, {"key": "on", "value": "dark"}]
    feature(app, "theme", value_type="string", variants=variants, rules=[{"type": "force", **ON}])
    first = resolve(app, "u1", "theme")
    assert (first.variant, first.reason, first.value) == ("on", "force", "dark")
    assert resolve(app, "u2", "theme") is first  # immutable: shared by every subject
    with app.app_context():
        update_experiment("theme", {"variants": [variants[0], {"key": "on", "value": "black"}]})
    assert resolve(app, "u1", "theme").value == "black"


def test_rules_run_in_order_and_the_experiment_falls_through(make_app: AppFactory) -> None:
    app = make_app()
    feature(
        app,
        conditions={"plan": "pro"},  # the experiment's own targeting
        rules=[
            {"type": "force", "condition": {"country": "CH"}, "variant": "on"},
            {"type": "experiment"},
            {"type": "rollout", "variant": "on", "coverage": 1.0},
        ],
    )
    swiss = resolve(app, "u1", "new-nav", attributes={"country": "CH", "plan": "free"})
    assert swiss.reason == "force"
    pro = resolve(app, "u1", "new-nav", attributes={"plan": "pro"})
    assert pro.reason == "hash" and pro.in_experiment
    # Not targeted by the experiment: GrowthBook goes on to the next rule.
    free = resolve(app, "u1", "new-nav", attributes={"plan": "free"})
    assert (free.variant, free.reason) == ("on", "rollout")


# -- typed values ----------------------------------------------------------------------------


def test_get_value_returns_the_variants_typed_value(make_app: AppFactory) -> None:
    extension = UMetrics()
    extension.subject_loader(lambda: (request.headers.get("X-User"), {}))
    app = make_app(extension)

    @app.get("/value/<key>")
    def value(key: str) -> Any:
        return jsonify(value=get_value(key, "fallback"), variant=get_variant(key))

    with app.app_context():
        create_experiment(
            {
                "key": "discount",
                "kind": "experiment",
                "value_type": "number",
                "variants": [
                    {"key": "none", "value": 0, "weight": 0},
                    {"key": "ten", "value": 0.1, "weight": 1},
                ],
            }
        )
        start_experiment("discount")
    client = app.test_client()
    answer = client.get("/value/discount", headers={"X-User": "u1"}).json
    assert answer == {"value": 0.1, "variant": "ten"}
    assert client.get("/value/missing", headers={"X-User": "u1"}).json == {
        "value": "fallback",
        "variant": None,
    }
    with app.app_context():
        get = get_experiment("discount")
        assert get is not None and get.value_type == "number"


TWO = [{"key": "a"}, {"key": "b", "value": 2}]
NOT_BOOLEAN = [{"key": "a", "value": "yes"}, {"key": "b", "value": False}]
BAD_CONDITION = {"x": {"$bogus": 1}}


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"value_type": "number", "variants": TWO}, "variants.0.value"),
        ({"value_type": "boolean", "variants": NOT_BOOLEAN}, "variants.0.value"),
        ({"rules": [{"type": "force", "variant": "maybe"}]}, "rules.0.variant"),
        ({"rules": [{"type": "experiment"}, {"type": "experiment"}]}, "rules.1.type"),
        (
            {"rules": [{"type": "force", "variant": "on", "condition": BAD_CONDITION}]},
            "rules.0.condition",
        ),
        (
            {"rules": [{"type": "rollout", "variant": "on", "coverage": 1.5}]},
            "rules.0.rollout.coverage",
        ),
        ({"rules": [{"type": "nope"}]}, "rules.0"),
        ({"overrides": [{"variant": "on"}]}, "overrides.0"),
        ({"overrides": [{"variant": "on", "subject_ids": ["a"], "segment": "s"}]}, "overrides.0"),
        ({"overrides": [{"variant": "up", "subject_ids": ["a"]}]}, "overrides.0.variant"),
        ({"hash_version": 3}, "hash_version"),
    ],
)
def test_bad_feature_definitions_get_400_naming_the_field(
    make_app: AppFactory, definition: dict[str, Any], field: str
) -> None:
    app = make_app()
    with app.app_context():
        manage = create_api_key("default", "metrics.manage")
    answer = app.test_client().post(
        f"{BASE}/experiments",
        json={"key": "f", "kind": "flag", **definition},
        headers={"Authorization": f"Bearer {manage}"},
    )
    assert answer.status_code == 400, answer.json
    fields = [d["field"] for d in answer.json["error"]["details"] or []]
    assert any(f == field or f.startswith(field) for f in fields), fields


def test_rest_rules_overrides_and_toggle(make_app: AppFactory) -> None:
    app = make_app()
    with app.app_context():
        manage = {"Authorization": f"Bearer {create_api_key('default', 'metrics.manage')}"}
    client = app.test_client()
    created = client.post(
        f"{BASE}/experiments", json={"key": "nav", "kind": "flag"}, headers=manage
    )
    assert created.status_code == 201
    assert created.json["rules"] == [
        {"type": "experiment", "id": "", "one_sided": False, "mde": 0.05, "min_bucket_version": 0}
    ]
    assert created.json["value_type"] == "boolean" and created.json["hash_version"] == 2
    client.post(f"{BASE}/experiments/nav/start", headers=manage)
    rules = [{"type": "rollout", "id": "r1", "variant": "on", "coverage": 0.0}]
    answer = client.put(f"{BASE}/experiments/nav/rules", json={"rules": rules}, headers=manage)
    assert answer.status_code == 200, answer.json
    assert answer.json["rules"] == [
        {**rules[0], "condition": None, "hash_attribute": "id", "seed": None}
    ]
    overrides = [{"subject_ids": ["qa"], "variant": "on"}]
    answer = client.put(
        f"{BASE}/experiments/nav/overrides", json={"overrides": overrides}, headers=manage
    )
    assert answer.status_code == 200 and answer.json["overrides"] == overrides
    assert resolve(app, "qa", "nav").variant == "on"
    assert resolve(app, "other", "nav").variant == "off"
    off = client.post(f"{BASE}/experiments/nav/toggle", json={"on": False}, headers=manage)
    assert off.status_code == 200 and off.json["killed"] is True
    assert resolve(app, "qa", "nav").variant == "off"
    on = client.post(f"{BASE}/experiments/nav/toggle", json={"on": True}, headers=manage)
    assert on.json["killed"] is False and resolve(app, "qa", "nav").variant == "on"
    bad = client.put(
        f"{BASE}/experiments/nav/rules", json={"rules": [{"type": "force"}]}, headers=manage
    )
    assert bad.status_code == 400
    assert bad.json["error"]["details"][0]["field"].startswith("rules.0")
    not_bool = client.post(f"{BASE}/experiments/nav/toggle", json={"on": "yes"}, headers=manage)
    assert not_bool.status_code == 400
    missing = client.put(f"{BASE}/experiments/none/rules", json={"rules": []}, headers=manage)
    assert missing.status_code == 404


# -- URL force (QA) ---------------------------------------------------------------------------


def url_force_app(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, **config: Any) -> Flask:
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "k1")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_k1", base64.b64encode(b"k" * 32).decode())
    extension = UMetrics()
    extension.subject_loader(lambda: (request.headers.get("X-User"), {}))
    extension.consent_loader(lambda: True)
    app = make_app(extension, **config)

    @app.get("/variant/<key>")
    def variant(key: str) -> Any:
        return jsonify(variant=get_variant(key))

    with app.app_context():
        create_experiment(
            {
                "key": "pricing",
                "variants": [{"key": "control", "weight": 1}, {"key": "annual", "weight": 0}],
            }
        )
        start_experiment("pricing")
    return app


def test_url_force_is_off_by_default(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    app = url_force_app(make_app, monkeypatch)
    client = app.test_client()
    served = client.get("/variant/pricing?umetrics_force=pricing:annual", headers={"X-User": "u1"})
    assert served.json == {"variant": "control"}
    assert rows(app, exposures) == 1  # the normal assignment, with consent


def test_url_force_when_allowed_is_never_recorded(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = url_force_app(make_app, monkeypatch, UMETRICS_ALLOW_URL_FORCE=True)
    client = app.test_client()
    forced = client.get("/variant/pricing?umetrics_force=pricing:annual", headers={"X-User": "u1"})
    assert forced.json == {"variant": "annual"}
    anonymous = app.test_client().get("/variant/pricing?umetrics_force=pricing:annual")
    assert anonymous.json == {"variant": "annual"}
    assert "Set-Cookie" not in anonymous.headers
    api = app.test_client().get(f"{BASE}/flags?keys=pricing&umetrics_force=pricing:annual")
    assert api.status_code == 200, api.json
    assert api.json["flags"]["pricing"]["variant"] == "annual"
    assert rows(app, assignments) == rows(app, exposures) == 0
    # An unknown variant is no force; the kill switch still wins.
    unknown = client.get("/variant/pricing?umetrics_force=pricing:gold", headers={"X-User": "u2"})
    assert unknown.json == {"variant": "control"}
    with app.app_context():
        set_killed("pricing", True)
    killed = client.get("/variant/pricing?umetrics_force=pricing:annual", headers={"X-User": "u3"})
    assert killed.json == {"variant": "control"}


# -- subject ids as GrowthBook ----------------------------------------------------------------


def test_empty_subject_id_is_no_subject(make_app: AppFactory) -> None:
    app = make_app()
    feature(app, "pricing", variants=[{"key": "control"}, {"key": "b"}])
    for empty in ("", None, 0):
        result = resolve(app, empty, "pricing", consent=True)
        assert (result.variant, result.reason, result.in_experiment) == (
            "control",
            "no_subject",
            False,
        )
    assert rows(app, assignments) == rows(app, exposures) == 0
    # GrowthBook leaves an empty id out too.
    gb = GrowthBook(attributes={"id": ""}, features={"pricing": _gb_feature()})
    assert gb.eval_feature("pricing").source == "defaultValue"


def _gb_feature() -> dict[str, Any]:
    return {
        "defaultValue": "control",
        "rules": [
            {
                "key": "pricing",
                "seed": "pricing",
                "hashVersion": 2,
                "variations": ["control", "b"],
                "weights": [0.5, 0.5],
            }
        ],
    }


def test_integer_subject_id_is_hashed_as_its_text_like_growthbook(make_app: AppFactory) -> None:
    app = make_app()
    feature(app, "pricing", variants=[{"key": "control"}, {"key": "b"}])
    for number in (7, 42, 1001, 123456789):
        ours = resolve(app, number, "pricing")
        assert ours.variant == resolve(app, str(number), "pricing").variant
        gb = GrowthBook(attributes={"id": number}, features={"pricing": _gb_feature()})
        assert ours.variant == gb.eval_feature("pricing").value
    stored = resolve(app, 42, "pricing", consent=True)
    assert stored.reason == "hash"
    with app.extensions["umetrics"].engine.connect() as connection:
        subject = connection.execute(select(assignments.c.subject_id)).scalar_one()
    assert subject == "42"


def test_integer_subject_from_the_subject_loader(make_app: AppFactory) -> None:
    extension = UMetrics()
    extension.subject_loader(lambda: (int(request.headers["X-User"]), {}))
    app = make_app(extension)

    @app.get("/variant/<key>")
    def variant(key: str) -> Any:
        return jsonify(variant=get_variant(key))

    feature(app, "pricing", variants=[{"key": "control"}, {"key": "b"}])
    answer = app.test_client().get("/variant/pricing", headers={"X-User": "42"})
    assert answer.status_code == 200
    assert answer.json == {"variant": resolve(app, "42", "pricing").variant}


# -- the migration ----------------------------------------------------------------------------


def test_existing_flags_become_features_with_one_experiment_rule(make_app: AppFactory) -> None:
    app = make_app()
    feature(app, "nav")
    feature(app, "pricing", variants=[{"key": "control"}, {"key": "annual"}])
    before = {
        key: [resolve(app, s, key).variant for s in SUBJECTS[:300]] for key in ("nav", "pricing")
    }
    engine = app.extensions["umetrics"].engine
    migrate.downgrade(engine, "0008")
    with engine.connect() as connection:
        assert "rules" not in {c["name"] for c in _columns(connection)}
    migrate.upgrade(engine)
    app.extensions["umetrics"].flag_cache.invalidate("default")
    with app.app_context():
        nav, pricing = get_experiment("nav"), get_experiment("pricing")
    assert nav is not None and pricing is not None
    assert [r.type for r in nav.rules] == [r.type for r in pricing.rules] == ["experiment"]
    assert (nav.value_type, pricing.value_type) == ("boolean", "string")
    assert nav.hash_version == pricing.hash_version == 2 and nav.overrides == ()
    after = {
        key: [resolve(app, s, key).variant for s in SUBJECTS[:300]] for key in ("nav", "pricing")
    }
    assert after == before
    assert resolve(app, "u1", "nav").value in (True, False)
    assert resolve(app, "u1", "pricing").value in ("control", "annual")


def _columns(connection: Any) -> list[dict[str, Any]]:
    from sqlalchemy import inspect

    return list(inspect(connection).get_columns(experiments.name))


# -- consent across devices -------------------------------------------------------------------


def device_app(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """Subjects log in with ``X-User``; consent comes from the consent cookie only."""
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "k1")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_k1", base64.b64encode(b"k" * 32).decode())
    extension = UMetrics()
    extension.subject_loader(lambda: (request.headers.get("X-User"), {}))
    app = make_app(extension)

    @app.get("/variant/<key>")
    def variant(key: str) -> Any:
        return jsonify(variant=get_variant(key))

    with app.app_context():
        create_experiment({"key": "pricing", "variants": [{"key": "control"}, {"key": "b"}]})
        start_experiment("pricing")
    return app


def subject_in(app: Flask, variant: str) -> str:
    return next(s for s in SUBJECTS if resolve(app, s, "pricing").variant == variant)


def test_stored_assignment_is_served_on_a_second_device_without_consent(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = device_app(make_app, monkeypatch)
    anna, bert = subject_in(app, "b"), subject_in(app, "control")
    laptop = app.test_client()
    laptop.post(f"{BASE}/consent", json={"consent": True}, headers={"X-User": anna})
    assert laptop.get("/variant/pricing", headers={"X-User": anna}).json == {"variant": "b"}
    assert rows(app, assignments) == rows(app, exposures) == 1
    # Everyone would now hash to control: only a stored assignment keeps Anna on b.
    with app.app_context():
        update_experiment("pricing", {"variants": [{"key": "control"}, {"key": "b", "weight": 0}]})
    phone = app.test_client()  # no consent cookie here
    served = phone.get("/variant/pricing", headers={"X-User": anna})
    assert served.json == {"variant": "b"}
    assert "Set-Cookie" not in served.headers
    assert phone.get("/variant/pricing", headers={"X-User": bert}).json == {"variant": "control"}
    assert rows(app, assignments) == rows(app, exposures) == 1  # nothing new without consent


def test_withdrawing_consent_deletes_the_subjects_assignments(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = device_app(make_app, monkeypatch)
    anna, bert = subject_in(app, "b"), subject_in(app, "control")
    for subject in (anna, bert):
        device = app.test_client()
        device.post(f"{BASE}/consent", json={"consent": True}, headers={"X-User": subject})
        device.get("/variant/pricing", headers={"X-User": subject})
    assert rows(app, assignments) == 2
    with app.app_context():
        update_experiment("pricing", {"variants": [{"key": "control"}, {"key": "b", "weight": 0}]})
    laptop = app.test_client()
    laptop.post(f"{BASE}/consent", json={"consent": True}, headers={"X-User": anna})
    withdrawn = laptop.post(f"{BASE}/consent", json={"consent": False}, headers={"X-User": anna})
    assert withdrawn.json == {"consent": False, "cookie": False, "anonymous_id": None}
    with app.extensions["umetrics"].engine.connect() as connection:
        left = connection.execute(select(assignments.c.subject_id)).scalars().all()
    assert left == [bert]  # only Anna's are gone
    assert rows(app, exposures) == 2  # the record of what was shown stays
    # Without a stored assignment, Anna gets the hash (now control) on every device.
    phone = app.test_client()
    assert phone.get("/variant/pricing", headers={"X-User": anna}).json == {"variant": "control"}
    assert rows(app, assignments) == 1
