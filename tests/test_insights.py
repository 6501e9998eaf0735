"""Saved insights and dashboards: an insight answers exactly what its report route answers,
relative ranges move with a frozen "today" in a non-UTC zone, a dashboard's range and filters
override its tiles', and everything is checked, scoped, audited, exported and imported."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from flask_umetrics import (
    UMetrics,
    create_api_key,
    create_dashboard,
    create_insight,
    export_insights,
    get_dashboard,
    import_insights,
    insight_result,
    list_dashboards,
    list_insights,
    register_insight_kind,
)
from flask_umetrics.db.tables import audit_log
from flask_umetrics.errors import ValidationError
from flask_umetrics.insights import INSIGHT_KINDS
from flask_umetrics.queries import relative_dates
from flask_umetrics.queries.relative_dates import check_token, relative_range
from flask_umetrics.state import current_state

from .conftest import AppFactory
from .events_data import at, load

pytestmark = pytest.mark.event_stores

API = "/umetrics/api"
ZONE = "America/New_York"
#: 03:00 UTC on 5 March is 22:00 on 4 March in New York: "today" there is 4 March.
FROZEN = "2026-03-05T03:00"
EVENTS = [
    ("d", "view", "2026-02-26T04:00", {"plan": "pro"}),  # 25 Feb in New York
    ("a", "view", "2026-02-26T06:00", {"plan": "pro"}),
    ("a", "signup", "2026-03-01T10:00"),
    ("b", "signup", "2026-03-02T10:00"),
    ("c", "signup", "2026-03-03T10:00"),
    ("f", "signup", "2026-03-03T12:00"),
    ("a", "view", "2026-03-04T12:00", {"plan": "pro"}),
    ("b", "view", "2026-03-04T23:00", {"plan": "free"}),
    ("c", "view", "2026-03-05T04:00", {"plan": "pro", "device": "mobile"}),  # 4 Mar there
    ("e", "view", "2026-03-05T06:00"),  # 5 March in New York: tomorrow, when frozen
]


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The clock relative ranges read; set ``frozen[0]`` to move it."""
    now = [FROZEN]
    monkeypatch.setattr(relative_dates, "clock", lambda: at(now[0]))
    return now


@pytest.fixture
def site(make_app: AppFactory, frozen: list[str]) -> Flask:
    app = make_app(UMETRICS_TIMEZONE=ZONE)
    load(app, EVENTS)
    return app


def headers(app: Flask, permission: str = "metrics.manage", scope: str = "default") -> Any:
    with app.app_context():
        return {"Authorization": f"Bearer {create_api_key(scope, permission)}"}


def save(app: Flask, kind: str, params: dict[str, Any], name: str = "x") -> Any:
    answer = app.test_client().post(
        f"{API}/insights",
        json={"name": name, "kind": kind, "params": params},
        headers=headers(app),
    )
    assert answer.status_code == 201, answer.json
    return answer.json


def get(app: Flask, path: str, **query: Any) -> Any:
    answer = app.test_client().get(
        f"{API}{path}", query_string=query, headers=headers(app, "metrics.view")
    )
    assert answer.status_code == 200, answer.json
    return answer.json


def values(trend: dict[str, Any]) -> list[Any]:
    return [point["value"] for point in trend["results"][0]["series"]]


# -- relative ranges ------------------------------------------------------------------------


def test_relative_tokens_are_calendar_days_with_an_exclusive_end() -> None:
    today = date(2026, 3, 4)  # a Wednesday
    assert relative_range("today", today) == (date(2026, 3, 4), date(2026, 3, 5))
    assert relative_range("yesterday", today) == (date(2026, 3, 3), date(2026, 3, 4))
    assert relative_range("-7d", today) == (date(2026, 2, 26), date(2026, 3, 5))
    assert relative_range("-30d", today) == (date(2026, 2, 3), date(2026, 3, 5))
    assert relative_range("-12w", today) == (date(2025, 12, 11), date(2026, 3, 5))
    assert relative_range("-3m", today) == (date(2026, 1, 1), date(2026, 3, 5))
    assert relative_range("-2y", today) == (date(2025, 1, 1), date(2026, 3, 5))
    assert relative_range("this_week", today) == (date(2026, 3, 2), date(2026, 3, 5))
    assert relative_range("last_week", today) == (date(2026, 2, 23), date(2026, 3, 2))
    assert relative_range("this_month", today) == (date(2026, 3, 1), date(2026, 3, 5))
    assert relative_range("last_month", today) == (date(2026, 2, 1), date(2026, 3, 1))
    assert relative_range("last_month", date(2026, 1, 15)) == (date(2025, 12, 1), date(2026, 1, 1))
    assert relative_range("this_year", today) == (date(2026, 1, 1), date(2026, 3, 5))
    for bad in ("-0d", "7d", "-7x", "tomorrow", "", "-99999d"):
        with pytest.raises(ValidationError) as error:
            check_token(bad)
        assert error.value.field == "date_range"
    with pytest.raises(ValidationError, match="before year 1"):
        relative_range("-9999y", date(2026, 3, 4))


def test_report_routes_take_a_relative_range_in_the_app_zone(
    site: Flask, frozen: list[str]
) -> None:
    relative = get(site, "/query/trends", event="view", date_range="-7d")
    explicit = get(
        site, "/query/trends", event="view", date_from="2026-02-26", date_to="2026-03-05"
    )
    assert relative == explicit
    assert values(relative) == [1, 0, 0, 0, 0, 0, 3]  # a on 26 Feb; a, b, c on 4 Mar (NY)
    assert relative["results"][0]["series"][0]["time"] == "2026-02-26T00:00:00-05:00"
    frozen[0] = "2026-03-06T03:00"  # a day later: 27 Feb .. 5 Mar
    assert values(get(site, "/query/trends", event="view", date_range="-7d")) == [
        0, 0, 0, 0, 0, 3, 1,
    ]  # fmt: skip
    frozen[0] = "2026-03-10T03:00"  # 9 March in New York; clocks went forward on 8 March
    times = [p["time"] for p in get(site, "/query/volume", date_range="-7d")["series"]]
    assert times[0] == "2026-03-03T00:00:00-05:00" and times[-1] == "2026-03-09T00:00:00-04:00"
    assert len(times) == 7
    both = site.test_client().get(
        f"{API}/query/trends?date_range=-7d&date_from=2026-03-01", headers=headers(site)
    )
    assert both.status_code == 400
    assert both.json["error"]["details"][0]["field"] == "date_range"


@settings(max_examples=200, deadline=None)
@given(
    today=st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)),
    n=st.integers(min_value=1, max_value=400),
)
def test_counted_ranges_against_a_day_by_day_reference(today: date, n: int) -> None:
    """-Nd and -Nw hold exactly N (7N) days ending today; -Nm starts on the 1st of the month
    reached by stepping back N - 1 months one at a time."""
    first, end = relative_range(f"-{n}d", today)
    assert (end - first).days == n and end == today + timedelta(days=1)
    first, end = relative_range(f"-{n}w", today)
    assert (end - first).days == 7 * n
    month = today.replace(day=1)
    for _ in range(n - 1):
        month = (month - timedelta(days=1)).replace(day=1)
    assert relative_range(f"-{n}m", today) == (month, end)


# -- insights -------------------------------------------------------------------------------


ROUTE_CASES = [
    ("trends", "/query/trends", {"event": "view", "interval": "day", "date_range": "-7d"}),
    ("volume", "/query/volume", {"event": "view", "date_range": "-30d"}),
    ("top", "/query/top", {"event": "view", "property": "plan", "date_range": "-30d"}),
    ("funnel", "/query/funnel", {"step": ["signup", "view"], "date_range": "-7d"}),
    (
        "funnel_correlation",
        "/query/funnel/correlation",
        {"step": ["signup", "view"], "exclude_events": ["buy"], "date_range": "-7d"},
    ),
    (
        "retention",
        "/query/retention",
        {"start_event": "signup", "return_event": "view", "period": "day", "periods": 4},
    ),
    ("sessions", "/query/sessions", {"date_range": "this_month"}),
    ("active", "/query/active", {"series": "dau", "date_range": "-7d"}),
    ("paths", "/query/paths", {"start_event": "signup", "date_range": "-7d"}),
    ("lifecycle", "/query/lifecycle", {"event": "view", "date_range": "-7d"}),
    ("stickiness", "/query/stickiness", {"event": "view", "date_range": "-30d"}),
    ("attribution", "/query/attribution", {"conversion_event": "view", "date_range": "-7d"}),
    ("cohorts", "/query/cohorts", {"period": "day", "date_range": "-7d"}),
    ("summary", "/query/dashboard", {"date_range": "-7d"}),
]


@pytest.mark.parametrize(("kind", "rule", "params"), ROUTE_CASES, ids=[c[0] for c in ROUTE_CASES])
def test_an_insight_answers_what_its_route_answers(
    site: Flask, kind: str, rule: str, params: dict[str, Any]
) -> None:
    saved = save(site, kind, params)
    query = {k: v for k, v in params.items() if k != "step"}
    if "step" in params:
        query["step"] = params["step"]
    if kind == "retention":
        query.update(date_from="2026-03-01", date_to="2026-03-05")
        patched = site.test_client().patch(
            f"{API}/insights/{saved['id']}",
            json={"params": query},
            headers=headers(site),
        )
        assert patched.status_code == 200, patched.json
    assert get(site, f"/insights/{saved['id']}/result") == get(site, rule, **query)


def test_exact_numbers_of_saved_insights(site: Flask) -> None:
    funnel = save(site, "funnel", {"step": ["signup", "view"], "date_range": "-7d"})
    answer = get(site, f"/insights/{funnel['id']}/result")
    assert [s["count"] for s in answer["steps"]] == [4, 3]  # a, b, c, f; f never viewed
    trend = save(site, "trends", {"event": "view", "date_range": "-30d"})
    assert get(site, f"/insights/{trend['id']}/result")["results"][0]["total"] == 5  # not e's
    with site.app_context():
        assert insight_result(trend["id"], date_range="-7d")["results"][0]["total"] == 4  # no d
        assert insight_result(10**6) is None


def test_params_are_checked_by_the_route_model_and_named(site: Flask) -> None:
    client = site.test_client()
    manage = headers(site)
    cases = [
        ({"kind": "nope"}, "kind"),
        ({"kind": "trends", "params": {"interval": "fortnight"}}, "params.interval"),
        ({"kind": "trends", "params": {"date_range": "-7x"}}, "params.date_range"),
        ({"kind": "trends", "params": {"scope_id": "other"}}, "params.scope_id"),
        ({"kind": "funnel", "params": {"step": ["only-one"]}}, "params.step"),
        ({"kind": "retention", "params": {"periods": 0}}, "params.periods"),
        ({"kind": "trends", "params": {"filters": [{"key": "k", "op": "gt", "value": "x"}]}},
         "params.filters.0"),
        ({"kind": "trends", "name": ""}, "name"),
    ]  # fmt: skip
    for body, field in cases:
        answer = client.post(f"{API}/insights", json={"name": "n", **body}, headers=manage)
        assert answer.status_code == 400, (body, answer.json)
        assert answer.json["error"]["details"][0]["field"] == field, answer.json
    with site.app_context():
        assert list_insights() == []


def test_saving_and_importing_name_a_mistake_alike(site: Flask) -> None:
    """One check for both: an item's first mistake (name, description, then kind and params)
    is the field an import names under ``insights.<n>``."""
    cases = [
        ({"kind": "nope"}, "kind"),
        ({"params": {"interval": "fortnight"}}, "params.interval"),
        ({"params": ["event", "view"]}, "params"),
        ({"name": " "}, "name"),
        ({"description": "d" * 5001}, "description"),
        ({"name": "", "params": {"interval": "fortnight"}}, "name"),
        ({"description": 5, "kind": "nope"}, "description"),
    ]
    for mistake, field in cases:
        item = {"name": "n", "description": "", "kind": "trends", "params": {}, **mistake}
        with site.app_context():
            with pytest.raises(ValidationError) as saved:
                create_insight(
                    item["kind"], item["params"], name=item["name"], description=item["description"]
                )
            with pytest.raises(ValidationError) as imported:
                import_insights({"insights": [{"name": "ok", "kind": "trends"}, item]})
        assert (saved.value.field, imported.value.field) == (field, f"insights.1.{field}")
        assert saved.value.message == imported.value.message
    with site.app_context():
        assert list_insights() == []


def test_stored_params_are_what_the_route_model_dumps(site: Flask) -> None:
    saved = save(site, "funnel", {"step": ["signup", '{"event": "view"}'], "window": 3600})
    assert saved["params"] == {
        "step": [{"event": "signup"}, {"event": "view"}],
        "window": 3600,
    }


# -- dashboards -----------------------------------------------------------------------------


def test_a_dashboard_range_and_filter_override_each_tile(site: Flask) -> None:
    free = {"key": "plan", "op": "eq", "value": "free"}
    pro = {"key": "plan", "op": "eq", "value": "pro"}
    no_device = {"key": "device", "op": "is_not_set"}
    plan_tile = save(site, "trends", {"event": "view", "date_range": "-30d", "filters": [free]})
    device_tile = save(
        site, "trends", {"event": "view", "date_range": "-30d", "filters": [no_device]}
    )
    with site.app_context():
        board = create_dashboard(
            "Board", tiles=[{"insight_id": plan_tile["id"]}, {"insight_id": device_tile["id"]}]
        )
    plain = get(site, f"/dashboards/{board.id}", results="true")
    assert [t["result"]["results"][0]["total"] for t in plain["tiles"]] == [1, 4]  # b; a a d e
    changed = site.test_client().patch(
        f"{API}/dashboards/{board.id}",
        json={"date_range": "-7d", "filters": [pro]},
        headers=headers(site),
    )
    assert changed.status_code == 200, changed.json
    tiles = get(site, f"/dashboards/{board.id}", results="true")["tiles"]
    # plan=pro replaces plan=free: a (26 Feb), a and c (4 Mar); the device filter stays: not c.
    assert [t["result"]["results"][0]["total"] for t in tiles] == [3, 2]
    assert tiles[0]["result"] == get(
        site, "/query/trends", event="view", date_range="-7d", filters=json.dumps([pro])
    )
    overridden = get(site, f"/insights/{plan_tile['id']}/result", date_range="-7d",
                     filters=json.dumps([pro]))  # fmt: skip
    assert overridden == tiles[0]["result"]
    dates = site.test_client().patch(
        f"{API}/dashboards/{board.id}",
        json={"date_from": "2026-03-04", "date_to": "2026-03-05"},
        headers=headers(site),
    )
    assert dates.json["date_range"] is None
    tiles = get(site, f"/dashboards/{board.id}", results="true")["tiles"]
    assert [t["result"]["results"][0]["total"] for t in tiles] == [2, 1]  # a c; a
    preset = get(site, f"/dashboards/{board.id}", results="true", date_range="today")["tiles"]
    assert preset[0]["result"] == tiles[0]["result"]  # today is 4 March in New York


def test_tiles_are_added_reordered_resized_and_removed(site: Flask) -> None:
    one = save(site, "trends", {"event": "view"}, name="one")["id"]
    two = save(site, "funnel", {"step": ["signup", "view"]}, name="two")["id"]
    client, manage = site.test_client(), headers(site)
    board = client.post(
        f"{API}/dashboards", json={"name": "B", "tiles": [{"insight_id": one}]}, headers=manage
    ).json
    path = f"{API}/dashboards/{board['id']}"
    tiles = [{"insight_id": two, "width": 12, "height": 3}, {"insight_id": one, "width": 4}]
    answer = client.patch(path, json={"tiles": tiles}, headers=manage).json
    assert [(t["insight_id"], t["position"], t["width"], t["height"]) for t in answer["tiles"]] == [
        (two, 0, 12, 3),
        (one, 1, 4, 2),
    ]
    bad = client.patch(path, json={"tiles": [{"insight_id": one, "width": 13}]}, headers=manage)
    assert bad.status_code == 400
    assert bad.json["error"]["details"][0]["field"] == "tiles.0.width"
    missing = client.patch(path, json={"tiles": [{"insight_id": 10**9}]}, headers=manage)
    assert missing.json["error"]["details"][0]["field"] == "tiles.0.insight_id"
    assert client.delete(f"{API}/insights/{two}", headers=manage).status_code == 200
    assert [t["insight_id"] for t in get(site, f"/dashboards/{board['id']}")["tiles"]] == [one]
    assert client.delete(path, headers=manage).json == {"id": board["id"], "deleted": True}
    assert client.get(path, headers=manage).status_code == 404
    assert get(site, f"/insights/{one}")["name"] == "one"  # the insight stays


def test_another_scope_sees_nothing(site: Flask) -> None:
    saved = save(site, "trends", {"event": "view"})
    other = headers(site, "metrics.manage", scope="other")
    client = site.test_client()
    for method, path in (
        ("GET", f"/insights/{saved['id']}"),
        ("GET", f"/insights/{saved['id']}/result"),
        ("PATCH", f"/insights/{saved['id']}"),
        ("DELETE", f"/insights/{saved['id']}"),
    ):
        answer = client.open(
            f"{API}{path}?scope_id=other",
            method=method,
            json={"scope_id": "other"} if method == "PATCH" else None,
            headers=other,
        )
        assert answer.status_code == 404, (method, path)
    made = client.post(
        f"{API}/dashboards",
        json={"scope_id": "other", "name": "B", "tiles": [{"insight_id": saved["id"]}]},
        headers=other,
    )
    assert made.json["error"]["details"][0]["field"] == "tiles.0.insight_id"


def statements_of(call: Any) -> tuple[Any, int]:
    """``call()``'s answer and how many SQL statements it sent to the app's engine."""
    sent: list[str] = []

    def count(*args: Any) -> None:
        sent.append(args[2])

    engine = current_state().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        return call(), len(sent)
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_listing_dashboards_takes_two_statements_however_many(site: Flask) -> None:
    with site.app_context():
        one = create_insight("trends", {"event": "view"}, name="one").id
        two = create_insight("funnel", {"step": ["signup", "view"]}, name="two").id
        made = [
            create_dashboard("E", tiles=[{"insight_id": two, "width": 12}, {"insight_id": one}])
        ]
        listed, first = statements_of(list_dashboards)
        assert listed == made and first == 2  # the dashboards, then every tile with its insight
        made += [
            create_dashboard("A"),
            create_dashboard("C", date_range="-7d", tiles=[{"insight_id": one, "height": 4}]),
            create_dashboard("B", tiles=[{"insight_id": i} for i in (one, two, one)]),
            create_dashboard("A", filters=[{"key": "plan", "op": "eq", "value": "pro"}]),
        ]
        other = create_insight("trends", {"event": "view"}, name="o", scope_id="other").id
        create_dashboard("0", tiles=[{"insight_id": other}], scope_id="other")
        listed, five = statements_of(list_dashboards)
        assert five == first
        # By name, then id; each tile in its position with its insight, as one by one.
        assert listed == [made[1], made[4], made[3], made[2], made[0]]
        assert listed == [get_dashboard(d.id) for d in listed]
        assert [(d.name, [(t.insight.name, t.position, t.width, t.height) for t in d.tiles])
                for d in listed] == [
            ("A", []),
            ("A", []),
            ("B", [("one", 0, 6, 2), ("two", 1, 6, 2), ("one", 2, 6, 2)]),
            ("C", [("one", 0, 6, 4)]),
            ("E", [("two", 0, 12, 2), ("one", 1, 6, 2)]),
        ]  # fmt: skip
        assert [d.name for d in list_dashboards(scope_id="other")] == ["0"]
        assert list_dashboards(scope_id="nobody") == []


def test_changes_are_audited(site: Flask) -> None:
    saved = save(site, "trends", {"event": "view"}, name="first")
    client, manage = site.test_client(), headers(site)
    client.patch(f"{API}/insights/{saved['id']}", json={"name": "second"}, headers=manage)
    board = client.post(f"{API}/dashboards", json={"name": "B"}, headers=manage).json
    client.patch(f"{API}/dashboards/{board['id']}", json={"name": "C"}, headers=manage)
    client.delete(f"{API}/dashboards/{board['id']}", headers=manage)
    client.delete(f"{API}/insights/{saved['id']}", headers=manage)
    with site.app_context(), current_state().engine.connect() as connection:
        rows = connection.execute(
            select(audit_log.c.action, audit_log.c.before, audit_log.c.after, audit_log.c.actor)
            .where(audit_log.c.action.like("insight.%") | audit_log.c.action.like("dashboard.%"))
            .order_by(audit_log.c.id)
        ).all()
    assert [r.action for r in rows] == [
        "insight.create",
        "insight.update",
        "dashboard.create",
        "dashboard.update",
        "dashboard.delete",
        "insight.delete",
    ]
    assert (rows[1].before["name"], rows[1].after["name"]) == ("first", "second")
    assert all(r.actor.startswith("key:") for r in rows)


# -- export and import ----------------------------------------------------------------------


def test_export_and_import_into_another_scope(site: Flask, tmp_path: Path) -> None:
    trend = save(site, "trends", {"event": "view", "date_range": "-7d"}, name="Views")
    funnel = save(site, "funnel", {"step": ["signup", "view"]}, name="Signup")
    with site.app_context():
        create_dashboard(
            "Product",
            date_range="-30d",
            filters=[{"key": "plan", "op": "eq", "value": "pro"}],
            tiles=[{"insight_id": funnel["id"], "width": 12}, {"insight_id": trend["id"]}],
        )
    document = get(site, "/export/insights")
    assert [i["name"] for i in document["insights"]] == ["Signup", "Views"]
    client = site.test_client()
    target = headers(site, scope="copy")
    imported = client.post(
        f"{API}/import/insights", json={**document, "scope_id": "copy"}, headers=target
    )
    assert imported.status_code == 201 and imported.json == {
        "insights": 2,
        "dashboards": 1,
        "annotations": 0,
    }
    with site.app_context():
        copied = export_insights(scope_id="copy")
        assert get_dashboard(1, scope_id="elsewhere") is None
    assert [i["params"] for i in copied["insights"]] == [i["params"] for i in document["insights"]]
    [copy] = copied["dashboards"]
    assert copy["date_range"] == "-30d" and copy["filters"] == document["dashboards"][0]["filters"]
    names = {i["ref"]: i["name"] for i in copied["insights"]}
    assert [(names[t["insight"]], t["width"]) for t in copy["tiles"]] == [
        ("Signup", 12),
        ("Views", 6),
    ]
    bad = {**document, "scope_id": "copy"}
    bad["insights"] = [*document["insights"], {"ref": 99, "name": "x", "kind": "trends",
                                               "params": {"interval": "x"}}]  # fmt: skip
    refused = client.post(f"{API}/import/insights", json=bad, headers=target)
    assert refused.status_code == 400
    assert refused.json["error"]["details"][0]["field"] == "insights.2.params.interval"
    for broken, field in (
        ({"insights": [{"ref": [1], "name": "x", "kind": "trends"}]}, "insights.0.ref"),
        ({"dashboards": [{"name": "d", "date_range": ["x"]}]}, "dashboards.0.date_range"),
        (
            {"dashboards": [{"name": "d", "tiles": [{"insight": 5}]}]},
            "dashboards.0.tiles.0.insight",
        ),
    ):
        answer = client.post(
            f"{API}/import/insights", json={**broken, "scope_id": "copy"}, headers=target
        )
        assert answer.json["error"]["details"][0]["field"] == field, answer.json
    with site.app_context():
        assert len(list_insights(scope_id="copy")) == 2  # nothing of the refused documents
    # The CLI writes and reads the same document.
    path = tmp_path / "insights.json"
    runner = site.test_cli_runner()
    exported = runner.invoke(args=["umetrics", "dashboards", "export", "--output", str(path)])
    assert exported.exit_code == 0, exported.output
    loaded = runner.invoke(args=["umetrics", "insights", "import", str(path), "--scope", "cli"])
    assert loaded.output.strip() == "imported 2 insights, 1 dashboards and 0 annotations"
    listed = runner.invoke(args=["umetrics", "insights", "list", "--scope", "cli"])
    assert [line.split("\t")[1:] for line in listed.output.splitlines()] == [
        ["funnel", "Signup"],
        ["trends", "Views"],
    ]
    with site.app_context():
        assert import_insights({"insights": [], "dashboards": []}, scope_id="cli") == {
            "insights": 0,
            "dashboards": 0,
            "annotations": 0,
        }


def test_the_kind_registry_takes_a_new_report(site: Flask) -> None:
    register_insight_kind("volume_again", "/query/volume", "Volume again")
    try:
        with site.app_context():
            saved = create_insight("volume_again", {"event": "view", "date_range": "-7d"}, name="v")
            assert insight_result(saved.id) == insight_result(
                create_insight("volume", {"event": "view", "date_range": "-7d"}, name="w").id
            )
    finally:
        INSIGHT_KINDS.pop("volume_again")


def test_who_may_read_and_write(make_app: AppFactory, frozen: list[str]) -> None:
    """The matrix (tests/test_auth_matrix.py) checks every route; here the story in one place:
    anonymous 401, a view key reads but cannot write, a manage key writes, another scope's key
    is refused, and a page of another site cannot write with the host's cookies."""
    extension = UMetrics()
    extension.authorizer(lambda permission, scope_id: scope_id == "default")
    app = make_app(extension)
    client = app.test_client()
    body = {"name": "n", "kind": "trends", "params": {}}
    assert client.get(f"{API}/insights", headers={}).status_code == 200  # the host's authorizer
    keyless = make_app()
    assert keyless.test_client().get(f"{API}/insights").status_code == 401
    view = headers(keyless, "metrics.view")
    assert keyless.test_client().get(f"{API}/dashboards", headers=view).status_code == 200
    refused = keyless.test_client().post(f"{API}/insights", json=body, headers=view)
    assert refused.status_code == 403
    manage = headers(keyless)
    assert (
        keyless.test_client().post(f"{API}/insights", json=body, headers=manage).status_code == 201
    )
    other = headers(keyless, scope="other")
    assert keyless.test_client().get(f"{API}/insights", headers=other).status_code == 403
    forged = client.post(
        f"{API}/dashboards", json={"name": "x"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert forged.status_code == 403 and forged.json["error"]["code"] == "cross_site_request"
    assert client.post(f"{API}/dashboards", json={"name": "x"}).status_code == 201
