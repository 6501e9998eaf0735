"""Funnel trends and time to convert on hand-built events with known answers."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_umetrics import UMetrics
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.funnel import FunnelExclusion, FunnelStep
from flask_umetrics.queries.funnel_modes import (
    FunnelTimeToConvertResult,
    FunnelTrendsResult,
    TimeBin,
    funnel_time_to_convert,
    funnel_trends,
)

from .conftest import AppFactory, allow_all
from .events_data import at, load
from .test_funnel import run, steps

pytestmark = pytest.mark.event_stores

DAY = 86400
SIGNUP_BUY = steps("signup", "buy")
SIGNUP_VIEW_BUY = steps("signup", "view", "buy")


def trends(
    app: Flask,
    funnel_steps: list[FunnelStep],
    date_from: str = "2026-03-02",
    date_to: str = "2026-03-05",
    **options: Any,
) -> FunnelTrendsResult:
    with app.app_context():
        ctx = report_context(date_from=at(date_from), date_to=at(date_to))
        return funnel_trends(ctx, funnel_steps, **options)


def times(app: Flask, funnel_steps: list[FunnelStep], **options: Any) -> FunnelTimeToConvertResult:
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-08"))
        return funnel_time_to_convert(ctx, funnel_steps, **options)


def points(result: FunnelTrendsResult) -> list[tuple[str, Any, Any, float]]:
    return [(p.start[:10], p.entered, p.converted, p.conversion_rate) for p in result.points]


def _load_entries(app: Flask) -> None:
    load(
        app,
        [
            ("a", "signup", "2026-03-02T10:00"),
            ("a", "buy", "2026-03-02T12:00"),
            # b enters on both days: the first attempt's buy is 25 h later (outside the window)
            ("b", "signup", "2026-03-02T23:00"),
            ("b", "signup", "2026-03-03T10:00"),
            ("b", "buy", "2026-03-04T00:00"),
            ("c", "signup", "2026-03-03T09:00"),
            ("d", "signup", "2026-03-01T10:00"),  # enters before the range
            ("d", "buy", "2026-03-01T11:00"),
        ],
    )


def test_trends_per_entry_day_every_day_present(app: Flask) -> None:
    _load_entries(app)
    result = trends(app, SIGNUP_BUY, window_seconds=DAY)
    assert points(result) == [
        ("2026-03-02", 2, 1, 0.5),
        ("2026-03-03", 2, 1, 0.5),
        ("2026-03-04", 0, 0, 0.0),
    ]
    assert result.mode == "trends" and result.interval == "day"
    assert result.points[0].start == "2026-03-02T00:00:00+00:00"


def test_trends_per_week_counts_a_person_once(app: Flask) -> None:
    _load_entries(app)
    result = trends(app, SIGNUP_BUY, interval="week", window_seconds=DAY)
    assert points(result) == [("2026-03-02", 3, 2, 2 / 3)]


def test_trends_with_an_exclusion(app: Flask) -> None:
    _load_entries(app)
    load(app, [("b", "cancel", "2026-03-03T11:00")])
    # Both of b's attempts see the cancel before their buy (or their window's end).
    cancel = [FunnelExclusion("cancel", (), 0, 1)]
    result = trends(app, SIGNUP_BUY, window_seconds=DAY, exclusions=cancel)
    assert points(result) == [
        ("2026-03-02", 1, 1, 1.0),
        ("2026-03-03", 1, 0, 0.0),
        ("2026-03-04", 0, 0, 0.0),
    ]


def test_trends_periods_follow_the_time_zone(make_app: AppFactory) -> None:
    app = make_app(UMetrics(), UMETRICS_TIMEZONE="Europe/Berlin")
    load(
        app,
        [
            ("a", "signup", "2026-03-02T22:30"),  # 23:30 in Berlin: March 2nd
            ("b", "signup", "2026-03-02T23:30"),  # 00:30 in Berlin: March 3rd
            ("b", "buy", "2026-03-03T08:00"),
        ],
    )
    result = trends(app, SIGNUP_BUY, "2026-03-02T00:00+01:00", "2026-03-04T00:00+01:00")
    assert [(p.start, p.entered, p.converted) for p in result.points] == [
        ("2026-03-02T00:00:00+01:00", 1, 0),
        ("2026-03-03T00:00:00+01:00", 1, 1),
    ]


def _load_journeys(app: Flask) -> None:
    load(
        app,
        [
            ("a", "signup", "2026-03-01T10:00"),
            ("a", "view", "2026-03-01T10:10"),
            ("a", "buy", "2026-03-01T10:40"),
            ("b", "signup", "2026-03-01T10:00"),
            ("b", "view", "2026-03-01T10:20"),
            ("c", "signup", "2026-03-01T10:00"),
            ("c", "view", "2026-03-01T10:05"),
            ("c", "buy", "2026-03-01T11:00"),
            ("e", "signup", "2026-03-01T10:00"),
            ("e", "view", "2026-03-01T10:50"),
            ("f", "signup", "2026-03-01T10:00"),
        ],
    )


def test_time_to_convert_between_two_steps(app: Flask) -> None:
    _load_journeys(app)
    result = times(app, SIGNUP_VIEW_BUY, from_step=0, to_step=1, bins=3)
    # 300, 600, 1200, 3000 seconds
    assert result.converted == 4
    assert result.average_seconds == 1275.0
    assert result.median_seconds == 900.0
    assert result.histogram == [
        TimeBin(300, 1200, 2),
        TimeBin(1200, 2100, 1),
        TimeBin(2100, 3000, 1),
    ]
    assert (result.mode, result.from_step, result.to_step) == ("time_to_convert", 0, 1)


def test_time_to_convert_to_the_last_step_by_default(app: Flask) -> None:
    _load_journeys(app)
    result = times(app, SIGNUP_VIEW_BUY, bins=2)
    # a: 2400, c: 3600; the largest time falls in the last bin (closed)
    assert (result.to_step, result.converted) == (2, 2)
    assert (result.average_seconds, result.median_seconds) == (3000.0, 3000.0)
    assert result.histogram == [TimeBin(2400, 3000, 1), TimeBin(3000, 3600, 1)]


def test_time_to_convert_agrees_with_the_funnel_medians(app: Flask) -> None:
    _load_journeys(app)
    medians = [s.median_seconds_from_previous for s in run(app, SIGNUP_VIEW_BUY).steps]
    assert medians == [None, 900.0, 2550.0]
    for j in (1, 2):
        result = times(app, SIGNUP_VIEW_BUY, from_step=j - 1, to_step=j)
        assert result.median_seconds == medians[j]


def test_time_to_convert_equal_times_and_nobody(app: Flask) -> None:
    load(
        app,
        [
            ("a", "signup", "2026-03-01T10:00:00"),
            ("a", "buy", "2026-03-01T10:00:01.5"),
            ("b", "signup", "2026-03-01T10:00:00"),
            ("b", "buy", "2026-03-01T10:00:01.5"),
        ],
    )
    result = times(app, SIGNUP_BUY, bins=4)
    assert (result.average_seconds, result.median_seconds) == (1.5, 1.5)
    assert result.histogram == [
        TimeBin(1, 2, 2),
        TimeBin(2, 3, 0),
        TimeBin(3, 4, 0),
        TimeBin(4, 5, 0),
    ]
    empty = times(app, steps("signup", "view"))
    assert (empty.converted, empty.average_seconds, empty.median_seconds) == (0, None, None)
    assert empty.histogram == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"from_step": 2}, "from_step"),
        ({"from_step": 1, "to_step": 1}, "to_step"),
        ({"to_step": 3}, "to_step"),
        ({"bins": 0}, "bins"),
        ({"bins": 101}, "bins"),
    ],
)
def test_time_to_convert_bad_arguments(app: Flask, options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        times(app, SIGNUP_VIEW_BUY, **options)
    assert error.value.field == field


def test_trends_bad_interval(app: Flask) -> None:
    with pytest.raises(ValidationError) as error:
        trends(app, SIGNUP_BUY, interval="hour")
    assert error.value.field == "interval"


def test_funnel_route_modes(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    _load_journeys(app)
    client = app.test_client()
    base = "/umetrics/api/query/funnel?date_from=2026-03-01&date_to=2026-03-03"
    three = "step=signup&step=view&step=buy"
    answer = client.get(f"{base}&{three}&mode=trends&window=86400")
    assert answer.status_code == 200, answer.json
    assert answer.json["mode"] == "trends"
    assert [(p["entered"], p["converted"]) for p in answer.json["points"]] == [(5, 2), (0, 0)]
    assert answer.json["points"][0] == {
        "start": "2026-03-01T00:00:00+00:00",
        "entered": 5,
        "converted": 2,
        "conversion_rate": 0.4,
    }
    timed = client.get(f"{base}&{three}&mode=time_to_convert&from_step=0&to_step=1&bins=3")
    assert timed.status_code == 200, timed.json
    assert (timed.json["converted"], timed.json["median_seconds"]) == (4, 900.0)
    assert timed.json["histogram"][0] == {"start_seconds": 300, "end_seconds": 1200, "count": 2}
    for bad, field in [
        ("mode=sideways", "mode"),
        ("mode=trends&interval=hour", "interval"),
        ("mode=time_to_convert&from_step=2", "from_step"),
        ("mode=time_to_convert&to_step=5", "to_step"),
        ("mode=time_to_convert&bins=0", "bins"),
        ("mode=trends&breakdown=plan", "breakdown"),
    ]:
        response = client.get(f"{base}&{three}&{bad}")
        assert response.status_code == 400, (bad, response.json)
        assert field in response.json["error"]["message"], (bad, response.json)


def test_openapi_documents_the_modes(make_app: AppFactory) -> None:
    document = make_app(UMetrics()).test_client().get("/umetrics/api/openapi.json").json
    [operation] = [
        ops["get"] for path, ops in document["paths"].items() if path.endswith("/query/funnel")
    ]
    names = {p["name"] for p in operation["parameters"]}
    assert {"mode", "interval", "from_step", "to_step", "bins"} <= names
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert [s["$ref"].rsplit("/", 1)[1] for s in schema["anyOf"]] == [
        "FunnelResult",
        "FunnelTrendsResult",
        "FunnelTimeToConvertResult",
    ]
