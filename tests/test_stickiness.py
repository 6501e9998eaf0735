"""Stickiness on hand-built events with known answers, and against the Python reference."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from flask_umetrics import UMetrics, identify
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.stickiness import StickinessResult, stickiness

from .conftest import AppFactory, allow_all
from .events_data import at, load
from .reference_lifecycle import BERLIN, LINKS, ROWS, draw_report, load_drawn, ref_stickiness
from .reference_models import stored_events

pytestmark = pytest.mark.event_stores


def run(app: Flask, date_from: str, date_to: str, **options: Any) -> StickinessResult:
    with app.app_context():
        ctx = report_context(
            date_from=at(date_from), date_to=at(date_to), filters=options.pop("filters", None)
        )
        return stickiness(ctx, **options)


def bars(result: StickinessResult) -> list[Any]:
    return [bar.persons for bar in result.bars]


EVENTS = [
    ("a", "view", "2026-03-02T00:00"),  # a: 3 days (two events on Mar 2)
    ("a", "view", "2026-03-02T23:59:59.999999"),
    ("a", "view", "2026-03-03T10:00"),
    ("a", "view", "2026-03-05T10:00"),
    ("b", "view", "2026-03-01T10:00"),  # before the range
    ("b", "view", "2026-03-04T10:00", {"plan": "pro"}),  # b: 1 day
    ("c", "view", "2026-03-02T10:00"),  # c: 4 days, every day of the range
    ("c", "view", "2026-03-03T10:00"),
    ("c", "view", "2026-03-04T10:00", {"plan": "pro"}),
    ("c", "view", "2026-03-05T10:00"),
    ("c", "view", "2026-03-06T00:00"),  # date_to is exclusive
    ("d", "email_sent", "2026-03-02T10:00", None, False),  # inactive: no bar by default
    ("d", "email_sent", "2026-03-03T10:00", None, False),
]


def test_days_of_the_range(app: Flask) -> None:
    load(app, EVENTS)
    result = run(app, "2026-03-02", "2026-03-06")
    assert result.interval == "day" and result.event is None
    assert [bar.periods for bar in result.bars] == [1, 2, 3, 4]
    assert bars(result) == [1, 0, 1, 1]  # b, a, c
    assert result.persons == 3 == sum(bars(result))
    assert bars(run(app, "2026-03-02", "2026-03-06", event="email_sent")) == [0, 1, 0, 0]
    pro = [{"key": "plan", "value": "pro"}]
    assert bars(run(app, "2026-03-02", "2026-03-06", filters=pro)) == [2, 0, 0, 0]
    weeks = run(app, "2026-03-02", "2026-03-16", interval="week")
    assert bars(weeks) == [3, 0]  # c's Mar 6 is in the first week too


def test_merged_persons_count_once(app: Flask) -> None:
    load(app, [("anon", "view", "2026-03-02T10:00"), ("user", "view", "2026-03-03T10:00")])
    assert bars(run(app, "2026-03-02", "2026-03-04")) == [2, 0]
    with app.app_context():
        identify("user", anon_id="anon")
    assert bars(run(app, "2026-03-02", "2026-03-04")) == [0, 1]


def test_days_follow_the_time_zone_across_dst(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_TIMEZONE="Europe/Berlin")
    load(
        app,
        [
            ("a", "view", "2026-03-29T21:59"),  # Mar 29 23:59 CEST (a 23-hour day)
            ("a", "view", "2026-03-29T22:00"),  # Mar 30 00:00 CEST
        ],
    )
    result = run(app, "2026-03-29T00:00+01:00", "2026-03-31T00:00+02:00")
    assert bars(result) == [0, 1]


def test_bad_interval(app: Flask) -> None:
    with pytest.raises(ValidationError) as error:
        run(app, "2026-03-02", "2026-03-09", interval="year")
    assert error.value.field == "interval"


def test_stickiness_route(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, EVENTS)
    client = app.test_client()
    base = "/umetrics/api/query/stickiness?date_from=2026-03-02&date_to=2026-03-06"
    answer = client.get(base)
    assert answer.status_code == 200, answer.json
    assert answer.json["persons"] == 3
    assert answer.json["bars"] == [
        {"periods": 1, "persons": 1},
        {"periods": 2, "persons": 0},
        {"periods": 3, "persons": 1},
        {"periods": 4, "persons": 1},
    ]
    for bad, field in [("interval=year", "interval"), ("event=", "event")]:
        response = client.get(f"{base}&{bad}")
        assert response.status_code == 400, (bad, response.json)
        assert field in response.json["error"]["message"], (bad, response.json)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=ROWS, links=LINKS, data=st.data())
def test_stickiness_matches_the_reference(
    berlin_app: Flask, rows: list[Any], links: list[tuple[int, int]], data: st.DataObject
) -> None:
    app = berlin_app
    load_drawn(app, rows, links)
    period, date_from, date_to, event = draw_report(data)
    with app.app_context():
        ctx = report_context(date_from=date_from, date_to=date_to)
        result = stickiness(ctx, event=event, interval=period)
        evs = stored_events()
    expected = ref_stickiness(evs, BERLIN, date_from, date_to, event=event, period=period)
    target(float(sum(expected)))
    assert bars(result) == expected
    doers = {
        e.person
        for e in evs
        if (e.active if event is None else e.event == event)
        and date_from.timestamp() * 1e6 <= e.ts < date_to.timestamp() * 1e6
    }
    assert result.persons == sum(expected) == len(doers)
