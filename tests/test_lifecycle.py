"""Lifecycle on hand-built events with known answers, and against the Python reference."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from flask_umetrics import UMetrics, identify
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.lifecycle import LifecycleResult, lifecycle

from .conftest import AppFactory, allow_all
from .events_data import at, load
from .reference_lifecycle import BERLIN, LINKS, ROWS, draw_report, load_drawn, ref_lifecycle
from .reference_models import stored_events

pytestmark = pytest.mark.event_stores


def run(app: Flask, date_from: str, date_to: str, **options: Any) -> LifecycleResult:
    with app.app_context():
        ctx = report_context(
            date_from=at(date_from), date_to=at(date_to), filters=options.pop("filters", None)
        )
        return lifecycle(ctx, **options)


def table(result: LifecycleResult) -> list[tuple[str, Any, Any, Any, Any]]:
    return [(p.time[:10], p.new, p.returning, p.resurrecting, p.dormant) for p in result.periods]


DAILY = [
    ("a", "view", "2026-03-02T10:00"),  # a's first event: new on Mar 2
    ("a", "view", "2026-03-03T10:00"),  # returning
    ("a", "view", "2026-03-05T10:00"),  # dormant on Mar 4, resurrecting on Mar 5
    ("b", "view", "2026-02-20T10:00"),
    ("b", "view", "2026-03-01T23:59:59.999999"),  # the period before the range
    ("b", "view", "2026-03-02T00:00"),  # returning on Mar 2, dormant on Mar 3
    ("c", "view", "2026-02-20T10:00"),
    ("c", "view", "2026-03-03T10:00"),  # resurrecting
    ("c", "view", "2026-03-04T10:00"),
    ("c", "view", "2026-03-05T10:00"),
    ("d", "view", "2026-03-01T10:00"),  # only before the range: dormant on Mar 2
    ("e", "email_sent", "2026-03-01T10:00", None, False),  # e appears (inactive event) ...
    ("e", "view", "2026-03-02T10:00"),  # ... so e is resurrecting, not new, on Mar 2
    ("f", "view", "2026-03-05T23:59:59.999999"),  # new on the last day
    ("f", "view", "2026-03-06T00:00"),  # date_to is exclusive
]


def test_daily_statuses(app: Flask) -> None:
    load(app, DAILY)
    result = run(app, "2026-03-02", "2026-03-06", interval="day")
    assert result.interval == "day" and result.event is None
    assert table(result) == [
        ("2026-03-02", 1, 1, 1, 1),  # new a, returning b, resurrecting e, dormant d
        ("2026-03-03", 0, 1, 1, 2),  # returning a, resurrecting c, dormant b and e
        ("2026-03-04", 0, 1, 0, 1),  # returning c, dormant a
        ("2026-03-05", 1, 1, 1, 0),  # new f, returning c, resurrecting a
    ]
    assert [p.active for p in result.periods] == [3, 2, 1, 3]
    assert result.periods[0].time == "2026-03-02T00:00:00+00:00"


def test_a_named_event_and_filters(app: Flask) -> None:
    load(
        app,
        [
            ("a", "view", "2026-03-01T10:00"),
            ("a", "buy", "2026-03-02T10:00", {"plan": "pro"}),  # a appeared on Mar 1: resurrecting
            ("a", "buy", "2026-03-03T10:00", {"plan": "free"}),
            ("b", "buy", "2026-03-02T10:00", {"plan": "pro"}),  # new
            ("b", "buy", "2026-03-03T10:00", {"plan": "pro"}),  # returning
            ("c", "buy", "2026-03-03T09:00", {"plan": "free"}, False),  # named: inactive counts
        ],
    )
    result = run(app, "2026-03-02", "2026-03-04", event="buy")
    assert table(result) == [("2026-03-02", 1, 0, 1, 0), ("2026-03-03", 1, 2, 0, 0)]
    pro = [{"key": "plan", "value": "pro"}]
    filtered = run(app, "2026-03-02", "2026-03-04", event="buy", filters=pro)
    # The filter picks the active events, not when a person appeared: c is not new anywhere.
    assert table(filtered) == [("2026-03-02", 1, 0, 1, 0), ("2026-03-03", 0, 1, 0, 1)]


def test_weeks_months_and_merges(app: Flask) -> None:
    load(
        app,
        [
            ("anon", "view", "2026-03-02T10:00"),  # Monday
            ("user", "view", "2026-03-09T10:00"),
            ("x", "view", "2026-02-27T10:00"),  # the week before the range
        ],
    )
    weeks = run(app, "2026-03-02", "2026-03-16", interval="week")
    assert table(weeks) == [("2026-03-02", 1, 0, 0, 1), ("2026-03-09", 1, 0, 0, 1)]
    with app.app_context():
        identify("user", anon_id="anon")
    merged = run(app, "2026-03-02", "2026-03-16", interval="week")
    assert table(merged) == [("2026-03-02", 1, 0, 0, 1), ("2026-03-09", 0, 1, 0, 0)]
    months = run(app, "2026-03-15", "2026-04-15", interval="month")
    assert table(months) == [("2026-03-01", 1, 0, 0, 1), ("2026-04-01", 0, 0, 0, 1)]


def test_days_follow_the_time_zone_across_dst(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_TIMEZONE="Europe/Berlin")
    load(
        app,
        [
            ("a", "view", "2026-03-28T22:59"),  # Mar 28 23:59 CET
            ("a", "view", "2026-03-29T21:59"),  # Mar 29 23:59 CEST (a 23-hour day)
            ("a", "view", "2026-03-29T22:00"),  # Mar 30 00:00 CEST
        ],
    )
    result = run(app, "2026-03-29T00:00+01:00", "2026-03-31T00:00+02:00")
    assert [(p.time, p.returning) for p in result.periods] == [
        ("2026-03-29T00:00:00+01:00", 1),
        ("2026-03-30T00:00:00+02:00", 1),
    ]


def test_sampling_scales(app: Flask) -> None:
    load(app, [(f"p{i}", "view", "2026-03-02T10:00") for i in range(60)])
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-02"), date_to=at("2026-03-03"), sample=0.5)
        [period] = lifecycle(ctx).periods
    assert period.new == period.active and period.new % 2 == 0 and period.returning == 0


def test_bad_interval(app: Flask) -> None:
    with pytest.raises(ValidationError) as error:
        run(app, "2026-03-02", "2026-03-09", interval="year")
    assert error.value.field == "interval"


def test_lifecycle_route(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, DAILY)
    client = app.test_client()
    base = "/umetrics/api/query/lifecycle?date_from=2026-03-02&date_to=2026-03-06"
    answer = client.get(base)
    assert answer.status_code == 200, answer.json
    assert answer.json["interval"] == "day"
    assert answer.json["periods"][0] == {
        "time": "2026-03-02T00:00:00+00:00",
        "new": 1,
        "returning": 1,
        "resurrecting": 1,
        "dormant": 1,
        "active": 3,
    }
    named = client.get(f"{base}&event=email_sent&interval=week").json
    assert named["event"] == "email_sent" and len(named["periods"]) == 1
    for bad, field in [("interval=year", "interval"), ("event=", "event")]:
        response = client.get(f"{base}&{bad}")
        assert response.status_code == 400, (bad, response.json)
        assert field in response.json["error"]["message"], (bad, response.json)


# --- property test against the reference ------------------------------------------------


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=ROWS, links=LINKS, data=st.data())
def test_lifecycle_matches_the_reference(
    berlin_app: Flask, rows: list[Any], links: list[tuple[int, int]], data: st.DataObject
) -> None:
    app = berlin_app
    load_drawn(app, rows, links)
    period, date_from, date_to, event = draw_report(data)
    with app.app_context():
        ctx = report_context(date_from=date_from, date_to=date_to)
        result = lifecycle(ctx, event=event, interval=period)
        expected = ref_lifecycle(
            stored_events(), BERLIN, date_from, date_to, event=event, period=period
        )
    target(float(sum(sum(row[1:]) for row in expected)))
    assert table_full(result) == expected
    for p in result.periods:  # the three active statuses partition the active persons
        assert p.new + p.returning + p.resurrecting == p.active


def table_full(result: LifecycleResult) -> list[tuple[str, Any, Any, Any, Any]]:
    return [(p.time, p.new, p.returning, p.resurrecting, p.dormant) for p in result.periods]
