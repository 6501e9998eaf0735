"""``compare=previous`` on trends and volume: the previous range of as many buckets, aligned by
bucket index, in the scope's calendar (across a DST change, months of different lengths)."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_umetrics import UMetrics
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.trends import trends, volume

from .conftest import AppFactory, allow_all
from .events_data import at, load

pytestmark = pytest.mark.event_stores

# Europe/Berlin: DST starts on Sunday 2026-03-29 (a 23-hour day). The range is the 7 local days
# from Monday Mar 30; the previous range is the 7 local days from Monday Mar 23, DST day included.
AROUND_DST = [
    ("b", "view", "2026-03-22T22:59"),  # Mar 22 23:59 CET: before the previous range
    ("a", "view", "2026-03-22T23:00"),  # Mar 23 00:00 CET: previous bucket 0
    ("a", "view", "2026-03-28T23:30"),  # Mar 29 00:30 CET: previous bucket 6
    ("b", "view", "2026-03-29T21:59"),  # Mar 29 23:59 CEST: previous bucket 6
    ("a", "view", "2026-03-29T22:00"),  # Mar 30 00:00 CEST: bucket 0
    ("c", "view", "2026-04-05T21:59"),  # Apr 5 23:59 CEST: bucket 6
    ("c", "view", "2026-04-05T22:00"),  # Apr 6 00:00 CEST: after the range
]


@pytest.fixture
def berlin(make_app: AppFactory) -> Flask:
    app = make_app(UMETRICS_TIMEZONE="Europe/Berlin")
    load(app, AROUND_DST)
    return app


def test_previous_week_is_aligned_by_local_day_across_dst(berlin: Flask) -> None:
    with berlin.app_context():
        ctx = report_context(
            date_from=at("2026-03-30T00:00+02:00"), date_to=at("2026-04-06T00:00+02:00")
        )
        result = trends(ctx, event="view", compare="previous")
        persons = trends(ctx, event="view", math="unique_persons", compare="previous")
        plain = trends(ctx, event="view")
    assert plain.previous is None
    assert result.previous is not None and persons.previous is not None
    [current] = result.results
    [previous] = result.previous.results
    assert [p.value for p in current.series] == [1, 0, 0, 0, 0, 0, 1]
    assert [p.value for p in previous.series] == [1, 0, 0, 0, 0, 0, 2]
    assert previous.total == 3 and result.previous.previous is None
    assert [p.value for p in persons.previous.results[0].series] == [1, 0, 0, 0, 0, 0, 2]
    assert [p.time for p in previous.series] == [
        "2026-03-23T00:00:00+01:00",
        "2026-03-24T00:00:00+01:00",
        "2026-03-25T00:00:00+01:00",
        "2026-03-26T00:00:00+01:00",
        "2026-03-27T00:00:00+01:00",
        "2026-03-28T00:00:00+01:00",
        "2026-03-29T00:00:00+01:00",
    ]
    assert current.series[0].time == "2026-03-30T00:00:00+02:00"


def test_a_range_holding_the_dst_change_compares_with_the_local_days_before(
    berlin: Flask,
) -> None:
    with berlin.app_context():
        ctx = report_context(
            date_from=at("2026-03-29T00:00+01:00"), date_to=at("2026-03-31T00:00+02:00")
        )
        days = volume(ctx, event="view", compare="previous")
        hours = volume(ctx, event="view", interval="hour", compare="previous")
    assert days.previous is not None and hours.previous is not None
    assert [(p.time, p.count) for p in days.series] == [
        ("2026-03-29T00:00:00+01:00", 2),
        ("2026-03-30T00:00:00+02:00", 1),
    ]
    assert [(p.time, p.count) for p in days.previous.series] == [
        ("2026-03-27T00:00:00+01:00", 0),
        ("2026-03-28T00:00:00+01:00", 0),
    ]
    # 47 hours (the 23-hour day and a 24-hour one), compared with the 47 hours before.
    assert len(hours.series) == len(hours.previous.series) == 47
    assert hours.previous.series[-1].time == "2026-03-28T23:00:00+01:00"
    assert sum(p.count for p in hours.series) == 3


def test_months_and_weeks(app: Flask) -> None:
    load(
        app,
        [
            ("a", "view", "2026-01-31T10:00"),  # previous bucket 0 (January)
            ("a", "view", "2026-02-28T23:59"),  # previous bucket 1 (February)
            ("b", "view", "2026-02-15T10:00"),
            ("a", "view", "2026-03-01T00:00"),  # bucket 0 (March)
            ("c", "view", "2026-02-23T10:00"),  # the week of Feb 23: previous week bucket 0
        ],
    )
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-05-01"))
        months = trends(ctx, interval="month", compare="previous")
        weekly = report_context(date_from=at("2026-03-02"), date_to=at("2026-03-16"))
        weeks = trends(weekly, interval="week", math="unique_persons", compare="previous")
    assert months.previous is not None and weeks.previous is not None
    assert [(p.time[:10], p.value) for p in months.results[0].series] == [
        ("2026-03-01", 1),
        ("2026-04-01", 0),
    ]
    assert [(p.time[:10], p.value) for p in months.previous.results[0].series] == [
        ("2026-01-01", 1),
        ("2026-02-01", 3),
    ]
    assert [(p.time[:10], p.value) for p in weeks.previous.results[0].series] == [
        ("2026-02-16", 0),  # b's Sunday Feb 15 is in the week of Feb 9
        ("2026-02-23", 2),
    ]


def test_breakdowns_are_computed_for_each_range(app: Flask) -> None:
    load(
        app,
        [
            ("a", "buy", "2026-03-01T10:00", {"plan": "pro"}),
            ("a", "buy", "2026-02-27T10:00", {"plan": "free"}),
            ("b", "buy", "2026-02-28T10:00", {"plan": "free"}),
        ],
    )
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-03"))
        result = trends(ctx, breakdown="plan", compare="previous")
    assert [(s.breakdown_value, s.total) for s in result.results] == [("pro", 1)]
    assert result.previous is not None
    assert [(s.breakdown_value, [p.value for p in s.series]) for s in result.previous.results] == [
        ("free", [1, 1])
    ]


def test_bad_compare(app: Flask) -> None:
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-03"))
        with pytest.raises(ValidationError) as error:
            trends(ctx, compare="last_year")
    assert error.value.field == "compare"


def test_compare_routes(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, [("a", "view", "2026-02-28T10:00"), ("a", "view", "2026-03-01T10:00")])
    client = app.test_client()
    base = "/umetrics/api/query/{}?date_from=2026-03-01&date_to=2026-03-03&compare=previous"
    answer = client.get(base.format("trends")).json
    assert [p["value"] for p in answer["results"][0]["series"]] == [1, 0]
    assert [p["value"] for p in answer["previous"]["results"][0]["series"]] == [0, 1]
    assert answer["previous"]["previous"] is None
    volume_answer = client.get(base.format("volume")).json
    assert [p["count"] for p in volume_answer["previous"]["series"]] == [0, 1]
    assert (
        client.get(base.format("trends").replace("&compare=previous", "")).json["previous"] is None
    )
    for report in ("trends", "volume"):
        bad = client.get(base.format(report).replace("previous", "last_year"))
        assert bad.status_code == 400 and "compare" in bad.json["error"]["message"]


def test_lifecycle_and_stickiness_compare_with_the_previous_local_days(berlin: Flask) -> None:
    from flask_umetrics.queries.lifecycle import lifecycle
    from flask_umetrics.queries.stickiness import stickiness

    with berlin.app_context():
        ctx = report_context(
            date_from=at("2026-03-30T00:00+02:00"), date_to=at("2026-04-06T00:00+02:00")
        )
        life = lifecycle(ctx, event="view", compare="previous")
        sticky = stickiness(ctx, event="view", compare="previous")
    assert life.previous is not None and sticky.previous is not None
    assert [p.time[:10] for p in life.previous.periods] == [
        "2026-03-23",
        "2026-03-24",
        "2026-03-25",
        "2026-03-26",
        "2026-03-27",
        "2026-03-28",
        "2026-03-29",
    ]
    # Mar 23: a is new; b appeared on Mar 22 (its event there is the period before): dormant.
    first = life.previous.periods[0]
    assert (first.new, first.dormant) == (1, 1)
    last = life.previous.periods[-1]  # Mar 29: a resurrecting, b resurrecting
    assert (last.resurrecting, last.active) == (2, 2)
    assert life.periods[0].returning == 1  # a, active on Mar 29 and Mar 30
    assert [bar.persons for bar in sticky.previous.bars][:2] == [1, 1]  # b: 1 day, a: 2 days
    assert [bar.persons for bar in sticky.bars][:2] == [2, 0]  # a: Mar 30, c: Apr 5
