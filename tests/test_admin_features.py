"""The Features pages with Flask's test client: the list with its switches, creating a feature,
the rule editor and overrides saved through the store (400 naming the field on bad input), what
view-only users see, and the switch's in-place JSON answer. Every answer is checked against what
``resolve_variant`` then serves."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_umetrics import UMetrics, create_experiment, get_experiment, resolve_variant
from flask_umetrics.db.tables import audit_log

from .admin_html import csrf_token, table_cells
from .conftest import AppFactory
from .test_admin_experiments import Users

ADMIN = "/umetrics/admin"


@pytest.fixture
def users() -> Users:
    """Who is logged in (``admin`` may manage, ``viewer`` may only view, None is nobody)."""
    return Users()


@pytest.fixture
def app(make_app: AppFactory, users: Users) -> Flask:
    extension = UMetrics()
    extension.authorizer(users.allows)
    extension.subject_loader(lambda: (users.current, {}))
    return make_app(extension, SECRET_KEY="admin-features-test")


def post(client: FlaskClient, page: str, path: str, **fields: Any) -> Any:
    html = client.get(ADMIN + page).get_data(as_text=True)
    return client.post(ADMIN + path, data={"csrf_token": csrf_token(html), **fields})


def served(app: Flask, subject: str, key: str = "beta", **attributes: Any) -> str | None:
    with app.app_context():
        return resolve_variant(
            key, subject_id=subject, consent=False, attributes=attributes
        ).variant


def new_feature(client: FlaskClient, **fields: Any) -> Any:
    return post(client, "/features/new", "/features/new", **fields)


def test_create_a_boolean_feature_then_rules_switch_and_overrides(app: Flask) -> None:
    client = app.test_client()
    empty = client.get(ADMIN + "/features").get_data(as_text=True)
    assert "No features in this scope yet" in empty and "New feature" in empty
    created = new_feature(client, key="beta", name="Beta nav", value_type="boolean")
    assert created.status_code == 302
    assert created.headers["Location"].endswith("/features/beta")
    with app.app_context():
        feature = get_experiment("beta")
        assert feature is not None
        assert (feature.kind, feature.value_type, feature.rules, feature.status) == (
            "flag",
            "boolean",
            (),
            "draft",
        )
    page = client.get(ADMIN + "/features/beta").get_data(as_text=True)
    assert "No rules: everyone gets the default value" in page
    assert "It is not running (status draft)" in page  # why there are no exposures

    saved = post(
        client,
        "/features/beta",
        "/features/beta/rules",
        rule_type=["force", "rollout", ""],
        rule_id=["", "", ""],
        rule_variant=["on", "on", "on"],
        rule_coverage=["", "100", "0"],
        rule_hash_attribute=["", "id", "id"],
        rule_condition=['{"plan": "pro"}', '{"plan": {"$in": ["team", "free"]}}', ""],
    )
    assert saved.status_code == 302
    with app.app_context():
        feature = get_experiment("beta")
        assert feature is not None
        assert [r.model_dump() for r in feature.rules] == [
            {"type": "force", "id": "", "condition": {"plan": "pro"}, "variant": "on"},
            {
                "type": "rollout",
                "id": "",
                "condition": {"plan": {"$in": ["team", "free"]}},
                "variant": "on",
                "coverage": 1.0,
                "hash_attribute": "id",
                "seed": None,
            },
        ]
    assert served(app, "u1", plan="pro") == "off"  # still off: never started

    switched = post(client, "/features", "/features/beta/toggle", on="true")
    assert switched.status_code == 302
    assert served(app, "u1", plan="pro") == "on"
    assert served(app, "u1", plan="enterprise") == "off"
    cells = table_cells(client.get(ADMIN + "/features").get_data(as_text=True), "features")
    assert [[" ".join(cell.split()) for cell in row] for row in cells] == [
        ["On", "beta Beta nav", "On: serving its rules", "2", "100%", "0", "0"]
    ]

    # The list's switch in place: JSON in, JSON out.
    html = client.get(ADMIN + "/features").get_data(as_text=True)
    off = client.post(
        ADMIN + "/features/beta/toggle",
        data={"csrf_token": csrf_token(html), "on": "false"},
        headers={"Accept": "application/json"},
    )
    assert off.status_code == 200
    assert off.get_json() == {
        "key": "beta",
        "on": False,
        "state": "Off (switched off: everyone gets the default value)",
    }
    assert served(app, "u1", plan="pro") == "off"
    on = client.post(
        ADMIN + "/features/beta/toggle",
        data={"csrf_token": csrf_token(html), "on": "true"},
        headers={"Accept": "application/json"},
    )
    assert on.get_json()["on"] is True
    assert served(app, "u1", plan="pro") == "on"

    added = post(
        client, "/features/beta", "/features/beta/overrides", variant="on", subject_ids="qa-1\nqa-2"
    )
    assert added.status_code == 302
    assert served(app, "qa-2", plan="enterprise") == "on"
    page = client.get(ADMIN + "/features/beta").get_data(as_text=True)
    assert table_cells(page, "overrides") == [["On (true)", "qa-1, qa-2", "Remove"]]
    removed = post(client, "/features/beta", "/features/beta/overrides/remove", index="0")
    assert removed.status_code == 302
    assert served(app, "qa-2", plan="enterprise") == "off"

    with app.extensions["umetrics"].engine.connect() as connection:
        actions = [row.action for row in connection.execute(select(audit_log.c.action))]
    assert actions[0] == "experiment.create" and "experiment.kill" in actions
    assert "experiment.unkill" in actions and "experiment.start" in actions


def test_typed_values_and_their_errors(app: Flask) -> None:
    client = app.test_client()
    bad = new_feature(
        client, key="limit", value_type="number", default_value="ten", served_value="20"
    )
    assert bad.status_code == 400
    assert "default value: must be a number" in bad.get_data(as_text=True)
    same = new_feature(
        client, key="limit", value_type="number", default_value="5", served_value="5"
    )
    assert same.status_code == 400
    assert "must differ from the default value" in same.get_data(as_text=True)
    assert (
        new_feature(
            client, key="limit", value_type="number", default_value="10", served_value="25.5"
        ).status_code
        == 302
    )
    assert (
        new_feature(
            client, key="theme", value_type="json", default_value='{"a": 1}', served_value="[1, 2]"
        ).status_code
        == 302
    )
    assert (
        new_feature(
            client, key="color", value_type="string", default_value="blue", served_value="dark red"
        ).status_code
        == 302
    )
    with app.app_context():
        limit, theme, color = (get_experiment(k) for k in ("limit", "theme", "color"))
        assert limit and theme and color
        assert [limit.value_of(k) for k in limit.variant_keys] == [10, 25.5]
        assert [theme.value_of(k) for k in theme.variant_keys] == [{"a": 1}, [1, 2]]
        assert color.variant_keys == ("blue", "value-1")
        assert [color.value_of(k) for k in color.variant_keys] == ["blue", "dark red"]
    taken = new_feature(client, key="limit", value_type="boolean")
    assert taken.status_code == 409 and "already exists" in taken.get_data(as_text=True)
    page = client.get(ADMIN + "/features/color").get_data(as_text=True)
    assert '<option value="value-1" selected>dark red</option>' in page  # values, not keys

    # The values form: edit a value, add one (weight 0), never two equal ones.
    edited = post(
        client, "/features/color", "/features/color/values", value=["navy", "dark red", "green"]
    )
    assert edited.status_code == 302
    with app.app_context():
        color = get_experiment("color")
        assert color is not None
        assert [(v.key, v.value, v.weight) for v in color.variants] == [
            ("blue", "navy", 0.5),
            ("value-1", "dark red", 0.5),
            ("green", "green", 0.0),
        ]
    same_twice = post(
        client, "/features/color", "/features/color/values", value=["a", "a", "b", ""]
    )
    assert same_twice.status_code == 400
    assert "every value must be different" in same_twice.get_data(as_text=True)
    not_a_number = post(client, "/features/limit", "/features/limit/values", value=["1", "x", ""])
    assert not_a_number.status_code == 400
    assert "values.1: must be a number" in not_a_number.get_data(as_text=True)
    assert new_feature(client, key="dark-mode", value_type="boolean").status_code == 302
    boolean = post(client, "/features/dark-mode", "/features/dark-mode/values", value=["true"])
    assert boolean.status_code == 400 and "values are false and true" in boolean.get_data(
        as_text=True
    )
    assert "edit-values" not in client.get(ADMIN + "/features/dark-mode").get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"rule_coverage": ["150"]}, "rules.0.coverage", "percentage from 0 to 100"),
        ({"rule_condition": ["{not json"]}, "rules.0.condition", "not valid JSON"),
        ({"rule_condition": ['{"$where": 1}']}, "rules.0.condition", ""),
        ({"rule_variant": ["maybe"]}, "rules.0.variant", "must be one of off, on"),
        ({"rule_type": ["bogus"]}, "rules.0", ""),
    ],
)
def test_bad_rules_are_a_400_naming_the_field(
    app: Flask, fields: dict[str, Any], field: str, message: str
) -> None:
    with app.app_context():
        create_experiment({"key": "beta", "kind": "flag", "rules": []})
    client = app.test_client()
    body = {
        "rule_type": ["rollout"],
        "rule_id": [""],
        "rule_variant": ["on"],
        "rule_coverage": ["50"],
        "rule_hash_attribute": ["id"],
        "rule_condition": [""],
        **fields,
    }
    answer = post(client, "/features/beta", "/features/beta/rules", **body)
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert "The rules were not saved" in html and field in html and message in html
    # What was typed stays on the page.
    assert f'value="{body["rule_coverage"][0]}" data-coverage' in html
    with app.app_context():
        feature = get_experiment("beta")
        assert feature is not None and feature.rules == ()


def test_bad_overrides_are_a_400_naming_the_field(app: Flask) -> None:
    with app.app_context():
        create_experiment({"key": "beta", "kind": "flag"})
    client = app.test_client()
    nobody = post(client, "/features/beta", "/features/beta/overrides", variant="on")
    assert nobody.status_code == 400
    assert "subject ids: give subject ids" in nobody.get_data(as_text=True)
    wrong = post(
        client, "/features/beta", "/features/beta/overrides", variant="nope", subject_ids="a"
    )
    assert wrong.status_code == 400 and "choose the value" in wrong.get_data(as_text=True)
    both = post(
        client,
        "/features/beta",
        "/features/beta/overrides",
        variant="on",
        subject_ids="a",
        segment="beta-testers",
    )
    assert both.status_code == 400 and "not both" in both.get_data(as_text=True)
    gone = post(client, "/features/beta", "/features/beta/overrides/remove", index="3")
    assert gone.status_code == 400 and "no such override" in gone.get_data(as_text=True)
    missing = post(client, "/features", "/features/nope/toggle", on="true")
    assert missing.status_code == 404


def test_view_only_users_see_the_state_without_controls(app: Flask, users: Users) -> None:
    with app.app_context():
        create_experiment(
            {
                "key": "beta",
                "kind": "flag",
                "rules": [{"type": "rollout", "variant": "on", "coverage": 0.25}],
                "overrides": [{"variant": "on", "subject_ids": ["qa-1"]}],
            }
        )
    client = app.test_client()
    users.current = "viewer"
    listing = client.get(ADMIN + "/features").get_data(as_text=True)
    assert 'data-testid="state-badge-beta">Off<' in listing
    assert "toggle-beta" not in listing and "New feature" not in listing
    page = client.get(ADMIN + "/features/beta").get_data(as_text=True)
    assert "rules-readonly" in page and "Percentage rollout: on to 25% (hashed on id)" in page
    assert "rules-form" not in page and "override-form" not in page and "qa-1" in page
    refused = client.post(ADMIN + "/features/beta/toggle", data={"on": "true"})
    assert refused.status_code == 403
    users.current = None
    assert client.get(ADMIN + "/features").status_code == 401
    assert client.get(ADMIN + "/features/beta").status_code == 401
