"""REST for flags and experiments (README, "REST API"): shapes, validation, permissions, audit."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_umetrics import UMetrics, create_api_key, current_anonymous_id, weighted_bucket
from flask_umetrics.db.tables import audit_log

from .conftest import AppFactory

BASE = "/umetrics/api"
BODY = {
    "key": "pricing",
    "name": "New pricing page",
    "kind": "experiment",
    "variants": [{"key": "control", "weight": 0.5}, {"key": "annual", "weight": 0.5}],
    "coverage": 1.0,
    "goal": {"event": "purchase"},
}


@pytest.fixture
def api(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> tuple[Flask, dict[str, str]]:
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_CURRENT", "k1")
    monkeypatch.setenv("UMETRICS_COOKIE_KEY_k1", base64.b64encode(b"k" * 32).decode())
    app = make_app(UMetrics())
    with app.app_context():
        key = create_api_key("default", "metrics.manage")
    return app, {"Authorization": f"Bearer {key}"}


def audit(app: Flask) -> list[tuple[str, str, Any, Any]]:
    with app.app_context(), app.extensions["umetrics"].engine.connect() as connection:
        rows = connection.execute(select(audit_log).order_by(audit_log.c.id))
        return [
            (r.action, r.target, r.before, r.after)
            for r in rows
            if r.action.startswith("experiment.")
        ]


def test_create_start_stop_and_audit(api: tuple[Flask, dict[str, str]]) -> None:
    app, manage = api
    client = app.test_client()
    created = client.post(f"{BASE}/experiments", json=BODY, headers=manage)
    assert created.status_code == 201, created.json
    body = created.json
    assert (body["status"], body["seed"], body["bucket_version"], body["type"]) == (
        "draft",
        "pricing",
        1,
        "multivariate",
    )
    assert body["metrics"][0]["event"] == "purchase" and body["metrics"][0]["kind"] == "conversion"
    assert client.post(f"{BASE}/experiments", json=BODY, headers=manage).status_code == 409
    started = client.post(f"{BASE}/experiments/pricing/start", headers=manage)
    assert started.json["status"] == "running" and started.json["started_at"]
    patched = client.patch(
        f"{BASE}/experiments/pricing",
        json={"variants": [{"key": "control", "weight": 0.2}, {"key": "annual", "weight": 0.8}]},
        headers=manage,
    )
    assert [v["weight"] for v in patched.json["variants"]] == [0.2, 0.8]
    assert patched.json["revision"] == 3
    stopped = client.post(
        f"{BASE}/experiments/pricing/stop", json={"shipped_variant": "annual"}, headers=manage
    )
    assert (stopped.json["status"], stopped.json["shipped_variant"]) == ("stopped", "annual")
    listed = client.get(f"{BASE}/experiments", headers=manage).json["experiments"]
    assert [e["key"] for e in listed] == ["pricing"]
    trail = audit(app)
    assert [(a, t) for a, t, _, _ in trail] == [
        ("experiment.create", "pricing"),
        ("experiment.start", "pricing"),
        ("experiment.update", "pricing"),
        ("experiment.ship", "pricing"),
    ]
    _, _, before, after = trail[2]
    assert [v["weight"] for v in before["variants"]] == [0.5, 0.5]
    assert [v["weight"] for v in after["variants"]] == [0.2, 0.8]
    with app.app_context(), app.extensions["umetrics"].engine.connect() as connection:
        actors = {
            r.actor
            for r in connection.execute(select(audit_log))
            if r.action.startswith("experiment.")
        }
    (actor,) = actors
    assert actor.startswith("key:")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"key": "bad key"}, "key"),
        ({"variants": [{"key": "only"}]}, "variants"),
        ({"variants": [{"key": "a"}, {"key": "a"}]}, "variants"),
        ({"variants": [{"key": "a", "weight": -1}, {"key": "b"}]}, "variants.0.weight"),
        ({"coverage": 1.5}, "coverage"),
        ({"kind": "rollout"}, "kind"),
        ({"conditions": {"country": {"$nope": 1}}}, "conditions.country.$nope"),
        ({"conditions": {"email": {"$regex": "("}}}, "conditions.email.$regex"),
        ({"conditions": {"email": {"$regex": "^(a+)\\1@"}}}, "conditions.email.$regex"),
        ({"conditions": {"email": {"$regexi": "^(?!admin)"}}}, "conditions.email.$regexi"),
        ({"conditions": {"email": {"$regex": "\ud800"}}}, "conditions.email.$regex"),
        ({"goal": {"event": ""}}, "goal.event"),
        # Found by the fuzz test: a goal filter without "key" was a 500.
        ({"goal": {"event": "buy", "filters": [{"x": {"y": 1}}]}}, "goal.filters.0"),
        ({"metrics": [{"event": "x", "kind": "mean"}]}, "metrics.0"),
        ({"start_at": "2026-12-01T00:00:00Z", "stop_at": "2026-11-01T00:00:00Z"}, "stop_at"),
        ({"namespace": {"name": "n", "start": 0.6, "end": 0.2}}, "namespace"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_bad_definitions_get_400_naming_the_field(
    api: tuple[Flask, dict[str, str]], change: dict[str, Any], field: str
) -> None:
    app, manage = api
    answer = app.test_client().post(f"{BASE}/experiments", json={**BODY, **change}, headers=manage)
    assert answer.status_code == 400, answer.json
    fields = [d["field"] for d in answer.json["error"]["details"] or []]
    assert any(f == field or f.startswith(field) for f in fields), fields
    assert audit(app) == []


def test_transitions_and_unknown_keys(api: tuple[Flask, dict[str, str]]) -> None:
    app, manage = api
    client = app.test_client()
    client.post(f"{BASE}/experiments", json=BODY, headers=manage)
    assert client.post(f"{BASE}/experiments/pricing/pause", headers=manage).status_code == 409
    assert client.post(f"{BASE}/experiments/nope/start", headers=manage).status_code == 404
    assert client.get(f"{BASE}/experiments/nope/results", headers=manage).status_code == 404
    client.post(f"{BASE}/experiments/pricing/start", headers=manage)
    assert client.delete(f"{BASE}/experiments/pricing", headers=manage).status_code == 409
    shipped_bad = client.post(
        f"{BASE}/experiments/pricing/ship", json={"variant": "nope"}, headers=manage
    )
    assert shipped_bad.status_code == 400
    assert shipped_bad.json["error"]["details"][0]["field"] == "shipped_variant"
    lowered = client.patch(
        f"{BASE}/experiments/pricing", json={"bucket_version": 1}, headers=manage
    )
    assert lowered.status_code == 400
    assert client.post(f"{BASE}/experiments/pricing/kill", headers=manage).json["killed"] is True
    client.post(f"{BASE}/experiments/pricing/stop", headers=manage)
    assert client.delete(f"{BASE}/experiments/pricing", headers=manage).json == {
        "key": "pricing",
        "deleted": True,
    }


def test_view_keys_cannot_change_and_other_scopes_are_refused(
    api: tuple[Flask, dict[str, str]],
) -> None:
    app, manage = api
    with app.app_context():
        view = {"Authorization": f"Bearer {create_api_key('default', 'metrics.view')}"}
        other = {"Authorization": f"Bearer {create_api_key('other', 'metrics.manage')}"}
    client = app.test_client()
    assert client.post(f"{BASE}/experiments", json=BODY, headers=view).status_code == 403
    client.post(f"{BASE}/experiments", json=BODY, headers=manage)
    assert client.get(f"{BASE}/experiments/pricing", headers=view).status_code == 200
    assert client.get(f"{BASE}/experiments/pricing/results", headers=view).status_code == 200
    assert client.post(f"{BASE}/experiments/pricing/start", headers=view).status_code == 403
    assert client.get(f"{BASE}/experiments?scope_id=default", headers=other).status_code == 403
    assert client.get(f"{BASE}/experiments?scope_id=other", headers=other).json == {
        "experiments": []
    }


def test_flags_endpoint_shape_and_cookie(api: tuple[Flask, dict[str, str]]) -> None:
    app, manage = api
    client = app.test_client()
    client.post(f"{BASE}/experiments", json={"key": "new-nav", "kind": "flag"}, headers=manage)
    client.post(f"{BASE}/experiments/new-nav/start", headers=manage)
    client.post(f"{BASE}/experiments", json=BODY, headers=manage)
    visitor = app.test_client()
    before = visitor.get(f"{BASE}/flags?keys=new-nav,pricing,missing")
    assert before.json == {
        "consent": False,
        "flags": {
            "new-nav": {"variant": "off", "enabled": False, "in_experiment": False, "value": False},
            "pricing": {
                "variant": "control",
                "enabled": False,
                "in_experiment": False,
                "value": "control",
            },
            "missing": {"variant": None, "enabled": False, "in_experiment": False, "value": None},
        },
    }
    assert "Set-Cookie" not in before.headers
    given = visitor.post(f"{BASE}/consent", json={"consent": True}).json
    assert given["cookie"] is True
    after = visitor.get(f"{BASE}/flags?keys=new-nav")
    cookie = visitor.get_cookie("umetrics_consent")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    with app.test_request_context(headers={"Cookie": f"umetrics_consent={cookie.value}"}):
        assert given["anonymous_id"] == current_anonymous_id()  # the browser client's id
    refused = visitor.post(f"{BASE}/consent", json={"consent": False}).json
    assert refused == {"consent": False, "cookie": False, "anonymous_id": None}
    visitor.post(f"{BASE}/consent", json={"consent": True})
    after = visitor.get(f"{BASE}/flags?keys=new-nav")
    flag = after.json["flags"]["new-nav"]
    assert flag["in_experiment"] is True and flag["variant"] in ("off", "on")
    assert flag["enabled"] == (flag["variant"] == "on") == flag["value"]
    everything = visitor.get(f"{BASE}/flags").json["flags"]
    assert sorted(everything) == ["new-nav"]  # "pricing" is a draft: not listed
    assert visitor.get(f"{BASE}/flags?keys=a%20b").status_code == 400
    assert visitor.post(f"{BASE}/consent", json={"consent": "yes"}).status_code == 400


def test_results_endpoint_contract(api: tuple[Flask, dict[str, str]]) -> None:
    from flask_umetrics import flush, resolve_variant, track

    app, manage = api
    client = app.test_client()
    client.post(f"{BASE}/experiments", json=BODY, headers=manage)
    client.post(f"{BASE}/experiments/pricing/start", headers=manage)
    subjects = [f"u{i}" for i in range(40)]
    with app.app_context():
        for s in subjects:
            variant = resolve_variant("pricing", subject_id=s, consent=True).variant
            if int(s[1:]) % (2 if variant == "annual" else 4) == 0:
                track("purchase", distinct_id=s)
        flush()
    result = client.get(f"{BASE}/experiments/pricing/results", headers=manage).json
    arms = {
        k: [
            s
            for s in subjects
            if ["control", "annual"][weighted_bucket("pricing", s, [0.5, 0.5])] == k
        ]
        for k in ("control", "annual")
    }
    control, annual = result["variants"]
    assert (control["key"], annual["key"]) == ("control", "annual")
    assert control["exposures"] == len(arms["control"])
    assert annual["exposures"] == len(arms["annual"])
    assert control["mean"] == pytest.approx(
        sum(int(s[1:]) % 4 == 0 for s in arms["control"]) / len(arms["control"]), abs=1e-12
    )
    assert annual["mean"] == pytest.approx(
        sum(int(s[1:]) % 2 == 0 for s in arms["annual"]) / len(arms["annual"]), abs=1e-12
    )
    for name in ("abs_lift", "p_value", "ci", "rel_lift", "rel_ci", "chance_to_win"):
        assert control[name] is None
        assert annual[name] is not None
    assert set(result["srm"]) >= {"p_value", "flagged"}
    assert result["goal"] == "purchase"
