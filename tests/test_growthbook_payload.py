"""Our features as GrowthBook SDK features: the growthbook Python SDK, given the translated
definitions, serves every subject what the server serves (issue 15's agreement contract)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from growthbook import GrowthBook, feature_repo
from werkzeug.serving import make_server

from flask_umetrics import (
    create_api_key,
    create_experiment,
    resolve_variant,
    set_killed,
    start_experiment,
    stop_experiment,
)
from flask_umetrics.db.types import utcnow
from flask_umetrics.flags.growthbook_payload import growthbook_features

from .conftest import AppFactory

SUBJECTS = 5000
COUNTRIES = ("DE", "CH", "FR", "US")
PLANS = ("free", "pro", "team")

DEFINITIONS: list[dict[str, Any]] = [
    {
        "key": "checkout",
        "kind": "flag",
        "conditions": {"plan": {"$in": ["pro", "team"]}},
        "rules": [
            {"type": "force", "id": "swiss", "condition": {"country": "CH"}, "variant": "on"},
            {"type": "experiment", "id": "exp"},
            {"type": "rollout", "id": "thirty", "variant": "on", "coverage": 0.3},
        ],
        "overrides": [{"subject_ids": ["user-7", "user-8"], "variant": "on"}],
    },
    {
        "key": "pricing",
        "value_type": "number",
        "variants": [
            {"key": "a", "value": 0, "weight": 0.2},
            {"key": "b", "value": 10, "weight": 0.3},
            {"key": "c", "value": 20.5, "weight": 0.5},
        ],
        "coverage": 0.8,
        "namespace": {"name": "checkout", "start": 0.0, "end": 0.7},
        "hash_version": 1,
        "rules": [
            {"type": "experiment"},
            {
                "type": "rollout",
                "variant": "b",
                "coverage": 0.5,
                "hash_attribute": "company",
                "seed": "company-wide",
            },
        ],
    },
    {
        "key": "theme",
        "value_type": "json",
        "variants": [
            {"key": "light", "value": {"bg": "white"}},
            {"key": "dark", "value": {"bg": "black", "contrast": [1, 2]}},
        ],
        "rules": [
            {"type": "force", "condition": {"beta": True}, "variant": "dark"},
            {"type": "experiment"},
        ],
    },
    {"key": "killed", "kind": "flag"},
    {"key": "shipped", "variants": [{"key": "old"}, {"key": "new"}]},
    {"key": "draft", "variants": [{"key": "old"}, {"key": "new"}]},
]


def attributes(i: int) -> dict[str, Any]:
    return {
        "country": COUNTRIES[i % 4],
        "plan": PLANS[(i // 4) % 3],
        "company": f"company-{i % 97}",
        "beta": i % 11 == 0,
    }


def define_all(app: Flask) -> None:
    with app.app_context():
        for definition in DEFINITIONS:
            create_experiment(definition)
            if definition["key"] != "draft":
                start_experiment(definition["key"])
        set_killed("killed", True)
        stop_experiment("shipped", shipped_variant="new")


def test_growthbook_sdk_serves_what_the_server_serves(make_app: AppFactory) -> None:
    app: Flask = make_app()
    define_all(app)
    with app.app_context():
        definitions = app.extensions["umetrics"].flag_cache.definitions("default")
        payload = growthbook_features(definitions, utcnow())
        assert payload.left_out == {}
        keys = [d["key"] for d in DEFINITIONS]
        reasons: dict[str, set[str]] = {key: set() for key in keys}
        for i in range(SUBJECTS):
            subject, attrs = f"user-{i}", attributes(i)
            sdk = GrowthBook(attributes={**attrs, "id": subject}, features=payload.features)
            for key in keys:
                ours = resolve_variant(key, subject_id=subject, consent=False, attributes=attrs)
                theirs = sdk.eval_feature(key).value
                assert ours.value == theirs, (key, subject, ours, theirs)
                assert type(ours.value) is type(theirs)
                reasons[key].add(ours.reason)
    # Every rule kind was exercised (and each kind of exclusion the experiment makes).
    assert reasons["checkout"] == {"override", "force", "hash", "rollout", "targeting"}
    assert reasons["pricing"] >= {"hash", "rollout", "namespace", "coverage"}
    assert reasons["theme"] == {"force", "hash"}
    assert reasons["killed"] == {"killed"}
    assert reasons["shipped"] == {"shipped"}
    assert reasons["draft"] == {"not_running"}


def test_what_needs_the_database_is_left_out_and_said(make_app: AppFactory) -> None:
    app: Flask = make_app()
    with app.app_context():
        create_experiment(
            {
                "key": "beta",
                "kind": "flag",
                "conditions": {"$inSegment": "pros"},
                "rules": [
                    {"type": "force", "condition": {"$notInSegment": "churned"}, "variant": "on"},
                    {"type": "experiment"},
                ],
                "overrides": [{"segment": "qa", "variant": "on"}],
            }
        )
        start_experiment("beta")
        definitions = app.extensions["umetrics"].flag_cache.definitions("default")
    payload = growthbook_features(definitions, utcnow())
    assert payload.features["beta"] == {"defaultValue": False, "rules": []}
    assert payload.left_out == {
        "beta": [
            "overrides.0: segment 'qa' needs the database",
            "rules.0: its condition uses segments",
            "rules.1: the experiment's conditions use segments",
        ]
    }


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_growthbook_sdk_loaded_from_the_endpoint_agrees_with_get_value(
    make_app: AppFactory,
) -> None:
    app: Flask = make_app()
    define_all(app)
    created = app.test_cli_runner().invoke(
        args=["umetrics", "keys", "create", "--permission", "client"]
    )
    assert created.exit_code == 0, created.output
    client_key = created.output.strip()
    with app.app_context():
        other_scope = create_api_key("another", "client")
    feature_repo.clear_cache()
    with serving(app) as base:
        sdk = GrowthBook(api_host=f"{base}/umetrics/api/growthbook", client_key=client_key)
        sdk.load_features()
        keys = [d["key"] for d in DEFINITIONS]
        assert sorted(sdk.get_features()) == sorted(keys)
        with app.app_context():
            for i in range(SUBJECTS):
                subject, attrs = f"user-{i}", attributes(i)
                sdk.set_attributes({**attrs, "id": subject})
                for key in keys:
                    ours = resolve_variant(key, subject_id=subject, consent=False, attributes=attrs)
                    assert ours.value == sdk.eval_feature(key).value, (key, subject)
        sdk.destroy()
    client = app.test_client()
    path = "/umetrics/api/growthbook/features/"
    answer = client.get(path + client_key)
    assert answer.status_code == 200
    assert sorted(answer.json) == ["experiments", "features", "savedGroups"]
    assert answer.json["features"]["shipped"] == {"defaultValue": "new", "rules": []}
    # The key decides the scope: another scope's client key reads that scope (no flags there).
    assert client.get(path + other_scope).json["features"] == {}
    # A client key reads nothing else, and a bad key is refused.
    refused = client.get(
        "/umetrics/api/experiments", headers={"Authorization": f"Bearer {client_key}"}
    )
    assert refused.status_code == 403
    assert client.get(path + "umk_0123456789abcdef_forged").status_code == 401
    assert client.get(path + "not-a-key").status_code == 401
