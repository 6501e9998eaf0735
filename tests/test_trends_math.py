"""Trends maths beyond total / unique persons: unique sessions, events per person, exact
percentiles of a numeric property (against a Python reference), and cumulative series."""

from __future__ import annotations

import math
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_umetrics import UMetrics
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.percentiles import PERCENTILES
from flask_umetrics.queries.trends import TrendsResult, trends

from .conftest import AppFactory, allow_all
from .events_data import at, clear_events, load

pytestmark = pytest.mark.event_stores

EVENTS = [
    ("a", "view", "2026-03-01T10:00", {"price": 1, "plan": "pro"}, None, "s1"),
    ("a", "view", "2026-03-01T11:00", {"price": 2, "plan": "pro"}, None, "s1"),
    ("b", "view", "2026-03-01T12:00", {"price": 3, "plan": "free"}, None, "s2"),
    ("b", "view", "2026-03-01T13:00", {"price": 4, "plan": "free"}, None, "s3"),
    ("c", "view", "2026-03-01T14:00", {"price": "5"}),  # a string: no number, no session
    ("a", "view", "2026-03-02T10:00", {"price": 10}, None, "s4"),
    ("a", "view", "2026-03-03T10:00", {"price": 99}, None, "s5"),  # date_to is exclusive
]


def run(app: Flask, **options: Any) -> TrendsResult:
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-03"))
        return trends(ctx, event="view", **options)


def series(result: TrendsResult, index: int = 0) -> list[Any]:
    return [point.value for point in result.results[index].series]


def test_sessions_and_events_per_person(app: Flask) -> None:
    load(app, EVENTS)
    assert series(run(app, math="unique_sessions")) == [3, 1]
    per_person = run(app, math="per_person_avg")
    assert series(per_person) == [5 / 3, 1.0] and per_person.results[0].total is None


def test_percentiles_interpolate_between_closest_ranks(app: Flask) -> None:
    load(app, EVENTS)
    values = {m: series(run(app, math=m, property="price")) for m in PERCENTILES}
    assert values["median"] == [2.5, 10.0]  # of 1, 2, 3, 4 (the string "5" is no number)
    assert values["p75"] == [3.25, 10.0]
    assert values["p90"] == [pytest.approx(3.7), 10.0]
    assert values["p95"] == [pytest.approx(3.85), 10.0]
    assert values["p99"] == [pytest.approx(3.97), 10.0]
    split = run(app, math="median", property="price", breakdown="plan")
    assert [(s.breakdown_value, series(split, i)) for i, s in enumerate(split.results)] == [
        ("free", [3.5, 0.0]),
        ("pro", [1.5, 0.0]),
        (None, [0.0, 10.0]),  # c's string is no number; a's Mar 2 event has no plan
    ]


def test_cumulative(app: Flask) -> None:
    load(app, EVENTS)
    result = run(app, cumulative=True)
    assert series(result) == [5, 6] and result.results[0].total == 6
    assert series(run(app, math="sum", property="price", cumulative=True)) == [10, 20]
    with pytest.raises(ValidationError) as error:
        run(app, math="unique_persons", cumulative=True)
    assert error.value.field == "cumulative"
    with pytest.raises(ValidationError) as error:
        run(app, math="p90")
    assert error.value.field == "property"


def test_first_time_counts_each_person_at_their_first_event(app: Flask) -> None:
    load(
        app,
        [
            ("a", "view", "2026-02-20T10:00"),  # before the range: a is never first in it
            ("a", "view", "2026-03-01T10:00"),
            ("b", "view", "2026-03-01T10:00", {"plan": "pro"}),
            ("b", "view", "2026-03-02T10:00"),
            ("c", "view", "2026-03-02T10:00", {"plan": "free"}),
            ("e", "view", "2026-03-02T12:00", {"plan": "x"}),  # same instant: the first to
            ("e", "view", "2026-03-02T12:00", {"plan": "y"}),  # arrive is the first event
            ("f", "click", "2026-03-01T10:00"),
            ("f", "view", "2026-03-03T00:00"),  # after the range
        ],
    )
    result = run(app, math="first_time")
    assert series(result) == [1, 2] and result.results[0].total == 3
    assert series(run(app, math="first_time", cumulative=True)) == [1, 3]
    split = run(app, math="first_time", breakdown="plan")
    assert {s.breakdown_value: series(split, i) for i, s in enumerate(split.results)} == {
        "pro": [1, 0],
        "free": [0, 1],
        "x": [0, 1],
    }
    with app.app_context():
        ctx = report_context(
            date_from=at("2026-03-01"),
            date_to=at("2026-03-03"),
            filters=[{"key": "plan", "value": "y"}],
        )
        # The first event matching the filters: e's second event.
        assert series(trends(ctx, event="view", math="first_time")) == [0, 1]


def test_trends_math_route(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, EVENTS)
    client = app.test_client()
    base = "/umetrics/api/query/trends?date_from=2026-03-01&date_to=2026-03-03&event=view"

    def values(query: str) -> list[Any]:
        answer = client.get(f"{base}&{query}")
        assert answer.status_code == 200, answer.json
        return [p["value"] for p in answer.json["results"][0]["series"]]

    assert values("math=median&property=price") == [2.5, 10.0]
    assert values("math=unique_sessions") == [3, 1]
    assert values("cumulative=true") == [5, 6]
    assert values("math=first_time") == [3, 0]  # a, b, c
    for bad, field in [
        ("math=p42", "math"),
        ("math=p75", "property"),
        ("math=avg&property=price&cumulative=true", "cumulative"),
    ]:
        response = client.get(f"{base}&{bad}")
        assert response.status_code == 400, (bad, response.json)
        assert field in response.json["error"]["message"], (bad, response.json)


def ref_percentile(numbers: list[float], p: int) -> float:
    """Linear interpolation between closest ranks, written another way than the SQL."""
    xs = sorted(numbers)
    position = (len(xs) - 1) * p / 100
    low = math.floor(position)
    high = min(low + 1, len(xs) - 1)
    return xs[low] + (position - low) * (xs[high] - xs[low])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cells=st.lists(
        st.lists(
            st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False)),
            max_size=12,
        ),
        min_size=1,
        max_size=3,
    ),
    math_name=st.sampled_from(sorted(PERCENTILES)),
)
def test_percentiles_match_the_reference(
    app: Flask, cells: list[list[float]], math_name: str
) -> None:
    clear_events(app)
    rows = [
        (f"p{i}", "buy", f"2026-03-0{day + 1}T{i % 24:02d}:00", {"price": number})
        for day, numbers in enumerate(cells)
        for i, number in enumerate(numbers)
    ]
    load(app, rows)
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at(f"2026-03-0{len(cells) + 1}"))
        result = trends(ctx, event="buy", math=math_name, property="price")
    p = PERCENTILES[math_name]
    expected = [ref_percentile(n, p) if n else 0.0 for n in cells]
    assert series(result) == [pytest.approx(e, rel=1e-12, abs=1e-9) for e in expected]
    # To the last bit: the documented float operations, so every store gives this very number.
    assert series(result) == [exact_percentile(n, p) if n else 0.0 for n in cells]


def exact_percentile(numbers: list[float], p: int) -> float:
    """docs/trends-lifecycle-stickiness.md's operations in their order."""
    xs = sorted(float(x) for x in numbers)
    k = (len(xs) - 1) * p
    f = (k % 100) / 100.0
    return xs[k // 100] * (1 - f) + xs[(k + 99) // 100] * f


WINDOW_EVENTS = [
    ("a", "view", "2026-03-02T10:00"),  # counts for Mar 2 .. Mar 8 in a 7-day window
    ("b", "view", "2026-03-01T10:00"),  # Mar 1 .. Mar 7: not in the range
    ("c", "view", "2026-03-09T10:00", {"plan": "pro"}),
    ("c", "view", "2026-03-10T10:00", {"plan": "free"}),
    ("a", "view", "2026-03-10T23:59", {"plan": "pro"}),
    ("d", "view", "2026-03-11T00:00"),  # date_to is exclusive
]


def test_rolling_active_persons(app: Flask) -> None:
    load(app, WINDOW_EVENTS)
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-08"), date_to=at("2026-03-11"))
        assert series(trends(ctx, event="view", math="wau")) == [1, 1, 2]
        assert series(trends(ctx, event="view", math="mau")) == [2, 3, 3]
        assert series(trends(ctx, event="view", math="dau")) == [0, 1, 2]
        split = trends(ctx, event="view", math="wau", breakdown="plan")
        assert [(s.breakdown_value, series(split, i)) for i, s in enumerate(split.results)] == [
            ("pro", [0, 1, 2]),
            ("free", [0, 0, 1]),
            (None, [1, 0, 0]),  # a's event in the window before the range has no plan
        ]
        with pytest.raises(ValidationError) as error:
            trends(ctx, math="wau", interval="week")
    assert error.value.field == "interval"


def test_rolling_maths_equal_the_active_users_series(make_app: AppFactory) -> None:
    """Another implementation (``queries/active.py``) of the same windows, in local days."""
    from flask_umetrics.queries.active import active_user_series

    app = make_app(UMETRICS_TIMEZONE="Europe/Berlin")
    load(
        app,
        [
            (f"p{i % 7}", "view", f"2026-03-{1 + (i * 5) % 31:02d}T{(i * 7) % 24:02d}:30")
            for i in range(60)
        ],
    )
    with app.app_context():
        ctx = report_context(
            date_from=at("2026-03-20T00:00+01:00"), date_to=at("2026-04-02T00:00+02:00")
        )
        for window in ("dau", "wau", "mau"):
            expected = [p.value for p in active_user_series(ctx, window=window).series]
            assert series(trends(ctx, math=window)) == expected, window
