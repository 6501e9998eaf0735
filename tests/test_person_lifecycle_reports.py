"""Every report after a merge and after deleting persons: the same exact answers on every store.

Four persons: Alice (two distinct ids, linked only after her events), Bob (deleted through the
REST API), Carol (deleted through the Python API) and Dave (kept). Each snapshot reads every
report — over REST where it has a route, otherwise through its Python function — and keeps the
numbers that tell who is counted. A merge re-groups Alice's past events (unique persons drop, the
funnel completes across her two ids, attribution finds her first touch); a deletion removes a
person from every report and from the export, and leaves the others' numbers as they were.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert

from flask_umetrics import create_api_key, identify
from flask_umetrics.db.tables import exposures
from flask_umetrics.events.privacy import delete_person
from flask_umetrics.events.validation import to_micros
from flask_umetrics.flags.metrics import metric_summaries
from flask_umetrics.flags.model import MetricSpec
from flask_umetrics.queries.connection import metadata_connection
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .events_data import at, load

pytestmark = pytest.mark.event_stores

API = "/umetrics/api"
RANGE = "date_from=2026-03-01&date_to=2026-03-15"
#: Stands for "5 minutes before the fixture loads the events": in the live feed's window, outside
#: every report's range (computed per test, not at import: a long run must not age it out).
LIVE = "5 minutes ago"
IDS = ("a-anon", "alice", "bob", "carol", "dave")

EVENTS = [
    # Alice, before logging in (first touch: an ad), then as herself.
    ("a-anon", "pageview", "2026-03-02T10:00", {"path": "/", "utm_source": "ads"}, None, "sa"),
    ("a-anon", "signup", "2026-03-02T10:05", None, None, "sa"),
    ("alice", "purchase", "2026-03-02T10:10", {"amount": 30}, None, "sa"),
    ("alice", "pageview", "2026-03-09T10:00", {"path": "/"}, None, "sa2"),
    # Bob: the whole funnel, back a week later.
    ("bob", "pageview", "2026-03-02T11:00", {"path": "/", "utm_source": "news"}, None, "sb"),
    ("bob", "signup", "2026-03-02T11:05", None, None, "sb"),
    ("bob", "purchase", "2026-03-02T11:10", {"amount": 20}, None, "sb"),
    ("bob", "pageview", "2026-03-09T11:00", {"path": "/pricing"}, None, "sb2"),
    ("bob", "pageview", LIVE, None, None, "sb3"),
    # Carol: signs up, never buys.
    ("carol", "pageview", "2026-03-03T09:00", {"path": "/pricing"}, None, "sc"),
    ("carol", "signup", "2026-03-03T09:05", None, None, "sc"),
    ("carol", "pageview", LIVE, None, None, "sc2"),
    # Dave: looks twice.
    ("dave", "pageview", "2026-03-03T12:00", {"path": "/"}, None, "sd"),
    ("dave", "pageview", "2026-03-10T12:00", {"path": "/"}, None, "sd2"),
    ("dave", "pageview", LIVE, None, None, "sd3"),
]
#: Exposures to one experiment: Alice under both ids (one unit once merged).
EXPOSURES = [
    ("a-anon", "treat", "2026-03-02T09:59"),
    ("alice", "treat", "2026-03-02T10:09"),
    ("bob", "control", "2026-03-02T10:59"),
    ("carol", "control", "2026-03-03T08:59"),
    ("dave", "treat", "2026-03-03T11:59"),
]


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    app = make_app(SECRET_KEY="lifecycle")
    live = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    load(
        app,
        [(who, name, live if when == LIVE else when, *rest) for who, name, when, *rest in EVENTS],
    )
    rows = [
        {
            "scope_id": "default",
            "experiment_key": "exp",
            "bucket_version": 1,
            "subject_id": subject,
            "variant": variant,
            "ts": to_micros(at(when)),
        }
        for subject, variant, when in EXPOSURES
    ]
    with app.app_context(), current_state().engine.begin() as connection:
        connection.execute(insert(exposures), rows)
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    with app.app_context():
        key = create_api_key("default", "metrics.manage")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def get(client: FlaskClient, path: str) -> Any:
    response = client.get(f"{API}{path}")
    assert response.status_code == 200, (path, response.get_json())
    return response.get_json()


def nonzero(series: list[dict[str, Any]], field: str) -> dict[str, Any]:
    """``{"03-02": n}`` for the buckets with a non-zero ``field``."""
    return {p["time"][5:10]: p[field] for p in series if p[field]}


def answers(app: Flask, client: FlaskClient) -> dict[str, Any]:
    """The numbers of every report that depend on who the persons are."""
    out: dict[str, Any] = {}
    out["volume"] = nonzero(get(client, f"/query/volume?{RANGE}")["series"], "count")
    trends = get(client, f"/query/trends?event=pageview&math=unique_persons&{RANGE}")
    out["trends_unique"] = nonzero(trends["results"][0]["series"], "value")
    amount = get(client, f"/query/trends?event=purchase&math=sum&property=amount&{RANGE}")
    out["trends_amount"] = nonzero(amount["results"][0]["series"], "value")
    top = get(client, f"/query/top?{RANGE}")["items"]
    out["top_events"] = [(i["key"], i["count"]) for i in top]
    paths = get(client, f"/query/top?event=pageview&property=path&{RANGE}")["items"]
    out["top_paths"] = [(i["key"], i["count"]) for i in paths]
    out["active"] = get(client, f"/query/active?{RANGE}")["count"]
    dau = get(client, f"/query/active?series=dau&{RANGE}")["series"]
    out["dau"] = nonzero(dau, "value")
    steps = "step=pageview&step=signup&step=purchase"
    for order in ("ordered", "strict", "any"):
        funnel = get(client, f"/query/funnel?{steps}&order={order}&{RANGE}")["steps"]
        out[f"funnel_{order}"] = [s["count"] for s in funnel]
    retention = get(
        client,
        f"/query/retention?start_event=signup&return_event=pageview&period=week&periods=1&{RANGE}",
    )
    out["retention"] = [(c["start"][5:10], c["size"], c["counts"]) for c in retention["cohorts"]]
    sessions = get(client, f"/query/sessions?{RANGE}")
    out["sessions"] = (sessions["count"], sessions["mean_duration"])
    paths_answer = get(client, f"/query/paths?start_event=pageview&steps=2&{RANGE}")["steps"]
    out["paths"] = [
        [(t["from"], t["to"], t["persons"]) for t in step["transitions"]] for step in paths_answer
    ]
    timelines = {}
    for distinct_id in IDS:
        response = client.get(f"{API}/persons/{distinct_id}/timeline")
        timelines[distinct_id] = (
            len(response.get_json()["events"]) if response.status_code == 200 else 404
        )
    out["timeline"] = timelines
    attribution = get(
        client,
        f"/query/attribution?conversion_event=purchase&model=first_touch"
        f"&group_by=source&value_property=amount&{RANGE}",
    )
    out["attribution"] = [(r["key"], r["conversions"], r["value"]) for r in attribution["rows"]]
    cohorts = get(client, f"/query/cohorts?period=week&{RANGE}")["cohorts"]
    out["cohorts"] = [(c["start"][5:10], c["size"]) for c in cohorts]
    live = get(client, "/query/live?minutes=30")
    out["live"] = (live["count"], sorted(e["distinct_id"] for e in live["events"]))
    dashboard = get(client, f"/query/dashboard?{RANGE}")
    out["dashboard"] = {
        k: dashboard[k] for k in ("total_events", "mau", "wau", "new_persons", "sessions")
    }
    out["dashboard_top"] = [(i["key"], i["count"]) for i in dashboard["top_events"]]
    people = get(client, "/persons")
    out["people"] = (
        people["total"],
        sorted((p["distinct_ids"], p["events"]) for p in people["persons"]),
    )
    out["search"] = {d: get(client, f"/persons?distinct_id={d}")["total"] for d in IDS}
    with app.app_context(), metadata_connection() as connection:
        out["experiment"] = {
            metric.kind: [
                (s.variant, s.n, s.total)
                for s in metric_summaries(
                    connection,
                    scope_id="default",
                    experiment_key="exp",
                    bucket_version=1,
                    variant_keys=["control", "treat"],
                    metric=metric,
                )
            ]
            for metric in (
                MetricSpec(event="purchase"),
                MetricSpec(kind="mean", event="purchase", property="amount"),
            )
        }
    query = {
        "select": [
            {"expr": "event"},
            {"expr": "count()"},
            {"expr": "count_distinct(person_id)"},
        ],
        "group_by": ["event"],
        "order_by": [{"field": "event"}],
        "date_from": "2026-03-01T00:00:00Z",
        "date_to": "2026-03-15T00:00:00Z",
    }
    adhoc = client.post(f"{API}/query", json=query)
    assert adhoc.status_code == 200, adhoc.get_json()
    out["adhoc"] = adhoc.get_json()["rows"]
    export = client.get(f"{API}/export/events?format=jsonl")
    assert export.status_code == 200
    lines = [json.loads(line) for line in export.get_data(as_text=True).splitlines()]
    out["export"] = sorted((e["distinct_id"], e["event"]) for e in lines)
    return out


#: Before the merge: Alice is two persons, "a-anon" (ad visit, signup) and "alice" (purchase,
#: a visit a week later); the session they share counts twice.
SEPARATE: dict[str, Any] = {
    "volume": {"03-02": 6, "03-03": 3, "03-09": 2, "03-10": 1},
    "trends_unique": {"03-02": 2, "03-03": 2, "03-09": 2, "03-10": 1},
    "trends_amount": {"03-02": 50},
    "top_events": [("pageview", 7), ("signup", 3), ("purchase", 2)],
    "top_paths": [("/", 5), ("/pricing", 2)],
    "active": 5,
    "dau": {"03-02": 3, "03-03": 2, "03-09": 2, "03-10": 1},
    "funnel_ordered": [5, 3, 1],
    "funnel_strict": [5, 3, 1],
    "funnel_any": [5, 3, 1],
    "retention": [("03-02", 3, [3, 1]), ("03-09", 0, [0, 0])],
    "sessions": (8, 150.0),
    "paths": [[("pageview", "signup", 3)], [("signup", "purchase", 1)]],
    "timeline": {"a-anon": 2, "alice": 2, "bob": 5, "carol": 3, "dave": 3},
    "attribution": [("direct", 1, 30.0), ("news", 1, 20.0)],
    "cohorts": [("03-02", 5.0), ("03-09", 0.0)],
    "live": (3, ["bob", "carol", "dave"]),
    "dashboard": {"total_events": 12, "mau": 5, "wau": 3, "new_persons": 5, "sessions": 8},
    "dashboard_top": [("pageview", 7), ("signup", 3), ("purchase", 2)],
    "people": (
        5,
        [(["a-anon"], 2), (["alice"], 2), (["bob"], 5), (["carol"], 3), (["dave"], 3)],
    ),
    "search": {"a-anon": 1, "alice": 1, "bob": 1, "carol": 1, "dave": 1},
    "experiment": {
        "conversion": [("control", 2, 1.0), ("treat", 3, 1.0)],
        "mean": [("control", 2, 20.0), ("treat", 3, 30.0)],
    },
    "adhoc": [["pageview", 7, 5], ["purchase", 2, 2], ["signup", 3, 3]],
    "export": sorted(
        [("a-anon", "pageview"), ("a-anon", "signup"), ("alice", "pageview")]
        + [("alice", "purchase"), ("bob", "purchase"), ("bob", "signup")]
        + [("bob", "pageview")] * 3
        + [("carol", "pageview")] * 2
        + [("carol", "signup")]
        + [("dave", "pageview")] * 3
    ),
}

#: After ``identify("alice", anon_id="a-anon")``: one person; her funnel completes, her purchase
#: is credited to the ad she came from, her session is one, she is one experiment unit.
MERGED: dict[str, Any] = {
    **SEPARATE,
    "active": 4,
    "dau": {"03-02": 2, "03-03": 2, "03-09": 2, "03-10": 1},
    "funnel_ordered": [4, 3, 2],
    "funnel_strict": [4, 3, 2],
    "funnel_any": [4, 3, 2],
    "retention": [("03-02", 3, [3, 2]), ("03-09", 0, [0, 0])],
    "sessions": (7, 214.2857142857143),  # 1500 s / 7, as every engine rounds it
    "paths": [[("pageview", "signup", 3)], [("signup", "purchase", 2)]],
    "timeline": {"a-anon": 4, "alice": 4, "bob": 5, "carol": 3, "dave": 3},
    "attribution": [("ads", 1, 30.0), ("news", 1, 20.0)],
    "cohorts": [("03-02", 4.0), ("03-09", 0.0)],
    "dashboard": {"total_events": 12, "mau": 4, "wau": 3, "new_persons": 4, "sessions": 7},
    "people": (4, [(["a-anon", "alice"], 4), (["bob"], 5), (["carol"], 3), (["dave"], 3)]),
    "experiment": {
        "conversion": [("control", 2, 1.0), ("treat", 2, 1.0)],
        "mean": [("control", 2, 20.0), ("treat", 2, 30.0)],
    },
    "adhoc": [["pageview", 7, 4], ["purchase", 2, 2], ["signup", 3, 3]],
}

#: After deleting Bob and Carol: only Alice (merged) and Dave are left anywhere.
DELETED: dict[str, Any] = {
    "volume": {"03-02": 3, "03-03": 1, "03-09": 1, "03-10": 1},
    "trends_unique": {"03-02": 1, "03-03": 1, "03-09": 1, "03-10": 1},
    "trends_amount": {"03-02": 30},
    "top_events": [("pageview", 4), ("purchase", 1), ("signup", 1)],
    "top_paths": [("/", 4)],
    "active": 2,
    "dau": {"03-02": 1, "03-03": 1, "03-09": 1, "03-10": 1},
    "funnel_ordered": [2, 1, 1],
    "funnel_strict": [2, 1, 1],
    "funnel_any": [2, 1, 1],
    "retention": [("03-02", 1, [1, 1]), ("03-09", 0, [0, 0])],
    "sessions": (4, 150.0),
    "paths": [[("pageview", "signup", 1)], [("signup", "purchase", 1)]],
    "timeline": {"a-anon": 4, "alice": 4, "bob": 404, "carol": 404, "dave": 3},
    "attribution": [("ads", 1, 30.0)],
    "cohorts": [("03-02", 2.0), ("03-09", 0.0)],
    "live": (1, ["dave"]),
    "dashboard": {"total_events": 6, "mau": 2, "wau": 2, "new_persons": 2, "sessions": 4},
    "dashboard_top": [("pageview", 4), ("purchase", 1), ("signup", 1)],
    "people": (2, [(["a-anon", "alice"], 4), (["dave"], 3)]),
    "search": {"a-anon": 1, "alice": 1, "bob": 0, "carol": 0, "dave": 1},
    "experiment": {
        "conversion": [("control", 0, 0.0), ("treat", 2, 1.0)],
        "mean": [("control", 0, 0.0), ("treat", 2, 30.0)],
    },
    "adhoc": [["pageview", 4, 2], ["purchase", 1, 1], ["signup", 1, 1]],
    "export": sorted(
        [("a-anon", "pageview"), ("a-anon", "signup"), ("alice", "pageview")]
        + [("alice", "purchase")]
        + [("dave", "pageview")] * 3
    ),
}


def test_a_merge_after_the_events_regroups_them_in_every_report(
    app: Flask, client: FlaskClient
) -> None:
    assert answers(app, client) == SEPARATE
    with app.app_context():
        identify("alice", anon_id="a-anon")
    assert answers(app, client) == MERGED


def test_deleted_persons_are_absent_from_every_report_and_the_export(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        identify("alice", anon_id="a-anon")
    assert answers(app, client) == MERGED
    deleted = client.delete(f"{API}/persons/bob")
    assert deleted.status_code == 200 and deleted.get_json()["events"] == 5
    with app.app_context():
        report = delete_person("carol")
    assert (report.found, report.events, report.exposures) == (True, 3, 1)
    assert answers(app, client) == DELETED
    text = client.get(f"{API}/export/events?format=csv").get_data(as_text=True)
    assert "bob" not in text and "carol" not in text and "news" not in text
    for distinct_id in ("bob", "carol"):
        assert client.get(f"{API}/persons/{distinct_id}/export").status_code == 404
