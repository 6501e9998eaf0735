"""Retention you can slice: hour periods, Sunday weeks, start / return filters, rolling windows,
the curve, breakdowns; and the persons of every cell equal to its count."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_umetrics import UMetrics, identify
from flask_umetrics.errors import ValidationError
from flask_umetrics.events.identity import set_person_properties
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.persons import persons_behind
from flask_umetrics.queries.retention import (
    RetentionCohort,
    RetentionResult,
    _curve,
    retention,
    retention_persons,
)

from .conftest import AppFactory, allow_all
from .events_data import at, clear_events, load
from .reference_models import stored_events

pytestmark = pytest.mark.event_stores


def run(app: Flask, date_from: str, date_to: str, **options: Any) -> RetentionResult:
    with app.app_context():
        return retention(report_context(date_from=at(date_from), date_to=at(date_to)), **options)


def grid(cohorts: list[RetentionCohort]) -> list[tuple[str, float, list[float]]]:
    return [(c.start[:16], c.size, c.counts) for c in cohorts]


def persons(app: Flask, date_from: str, date_to: str, **options: Any) -> list[str]:
    """The first distinct id of each person of a cell."""
    with app.app_context():
        ctx = report_context(date_from=at(date_from), date_to=at(date_to))
        listed = persons_behind(retention_persons(ctx, **options), limit=100)
    assert listed.total == len(listed.persons)
    return sorted(p.distinct_ids[0] for p in listed.persons)


def test_hour_periods(app: Flask) -> None:
    load(
        app,
        [
            ("a", "view", "2026-03-02T10:15"),
            ("a", "view", "2026-03-02T11:59"),  # k = 1
            ("a", "view", "2026-03-02T12:30"),  # k = 2
            ("b", "view", "2026-03-02T11:00"),
            ("b", "view", "2026-03-02T11:30"),  # k = 0
        ],
    )
    result = run(app, "2026-03-02T10:00", "2026-03-02T12:00", period="hour", periods=2)
    assert grid(result.cohorts) == [
        ("2026-03-02T10:00", 1, [1, 1, 1]),
        ("2026-03-02T11:00", 1, [1, 0, 0]),
    ]
    cell = {"cohort": "2026-03-02T10:00:00+00:00", "k": 2, "period": "hour", "periods": 2}
    assert persons(app, "2026-03-02T10:00", "2026-03-02T12:00", **cell) == ["a"]


WEEK_EDGES = [
    ("a", "view", "2026-03-01T10:00"),  # a Sunday
    ("a", "view", "2026-03-02T10:00"),  # Monday: same Sunday week, next Monday week
    ("b", "view", "2026-03-07T10:00"),  # Saturday
    ("b", "view", "2026-03-08T10:00"),  # Sunday: next Sunday week, same Monday week
]


def test_week_start_sunday(app: Flask) -> None:
    load(app, WEEK_EDGES)
    sunday = run(app, "2026-03-01", "2026-03-15", period="week", periods=1, week_start="sunday")
    assert sunday.week_start == "sunday"
    assert grid(sunday.cohorts) == [
        ("2026-03-01T00:00", 2, [2, 1]),  # a back in its own week, b the week after
        ("2026-03-08T00:00", 0, [0, 0]),
    ]
    monday = run(app, "2026-03-01", "2026-03-15", period="week", periods=1)
    assert monday.week_start == "monday"
    assert grid(monday.cohorts) == [
        ("2026-03-02T00:00", 1, [1, 0]),  # a started in the week of Feb 23: not shown
        ("2026-03-09T00:00", 0, [0, 0]),
    ]
    cell = {"cohort": "2026-03-01T00:00:00+00:00", "k": 1, "week_start": "sunday", "periods": 1}
    assert persons(app, "2026-03-01", "2026-03-15", **cell) == ["b"]


def test_start_and_return_filters(app: Flask) -> None:
    load(
        app,
        [
            ("a", "signup", "2026-03-02T10:00", {"plan": "pro"}),
            ("a", "buy", "2026-03-03T10:00", {"amount": 5}),
            ("b", "signup", "2026-03-02T10:00", {"plan": "free"}),
            ("b", "buy", "2026-03-03T10:00", {"amount": 50}),
            ("c", "signup", "2026-03-03T10:00", {"plan": "pro"}),
            ("c", "buy", "2026-03-03T11:00", {"amount": 50}),
        ],
    )
    options: dict[str, Any] = {
        "start_event": "signup",
        "return_event": "buy",
        "period": "day",
        "periods": 1,
        "start_filters": [{"key": "plan", "op": "eq", "value": "pro"}],
    }
    only_start = run(app, "2026-03-02", "2026-03-04", **options)
    assert grid(only_start.cohorts) == [
        ("2026-03-02T00:00", 1, [0, 1]),  # a (b is on the free plan)
        ("2026-03-03T00:00", 1, [1, 0]),  # c
    ]
    options["return_filters"] = [{"key": "amount", "op": "gt", "value": 10}]
    both = run(app, "2026-03-02", "2026-03-04", **options)
    assert grid(both.cohorts) == [
        ("2026-03-02T00:00", 1, [0, 0]),  # a's buy of 5 does not count
        ("2026-03-03T00:00", 1, [1, 0]),
    ]
    cell = {"cohort": "2026-03-03T00:00:00+00:00", "k": 0, **options}
    assert persons(app, "2026-03-02", "2026-03-04", **cell) == ["c"]
    cell = {"cohort": "2026-03-02T00:00:00+00:00", "k": 1, **options}
    assert persons(app, "2026-03-02", "2026-03-04", **cell) == []


ROLLING = [
    ("a", "view", "2026-03-02T22:00"),
    ("a", "view", "2026-03-03T10:00"),  # 12 h later: rolling k = 0, calendar k = 1
    ("a", "view", "2026-03-04T23:00"),  # 49 h later: rolling k = 2, calendar k = 2
    ("b", "view", "2026-03-02T01:00"),
    ("b", "view", "2026-03-03T02:00"),  # 25 h later: k = 1 both ways
    ("c", "view", "2026-03-03T08:00"),
    ("c", "view", "2026-03-04T07:00"),  # 23 h later: rolling k = 0, calendar k = 1
]


@pytest.mark.parametrize(
    ("windows", "bounded", "expected"),
    [
        (
            "calendar",
            True,
            [("2026-03-02T00:00", 2, [2, 2, 1]), ("2026-03-03T00:00", 1, [1, 1, 0])],
        ),
        ("rolling", True, [("2026-03-02T00:00", 2, [2, 1, 1]), ("2026-03-03T00:00", 1, [1, 0, 0])]),
        (
            "calendar",
            False,
            [("2026-03-02T00:00", 2, [2, 2, 1]), ("2026-03-03T00:00", 1, [1, 1, 0])],
        ),
        (
            "rolling",
            False,
            [("2026-03-02T00:00", 2, [2, 2, 1]), ("2026-03-03T00:00", 1, [1, 0, 0])],
        ),
    ],
)
def test_rolling_windows(app: Flask, windows: str, bounded: bool, expected: list[Any]) -> None:
    load(app, ROLLING)
    options = {"period": "day", "periods": 2, "windows": windows, "bounded": bounded}
    result = run(app, "2026-03-02", "2026-03-04", **options)
    assert result.windows == windows
    assert grid(result.cohorts) == expected
    for cohort in result.cohorts:
        for k, count in enumerate(cohort.counts):
            cell = {"cohort": cohort.start, "k": k, **options}
            assert len(persons(app, "2026-03-02", "2026-03-04", **cell)) == count
    sizes = [c.size for c in result.cohorts]
    assert result.curve == [sum(c.counts[k] for c in result.cohorts) / sum(sizes) for k in range(3)]


def test_rolling_day_windows_are_24_hours_across_dst(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_TIMEZONE="Europe/Berlin")
    load(
        app,
        [
            ("a", "view", "2026-03-28T23:30"),  # Mar 29 00:30 CET (a 23-hour local day)
            ("a", "view", "2026-03-29T23:00"),  # Mar 30 01:00 CEST: 23.5 h later
        ],
    )
    span = ("2026-03-29T00:00+01:00", "2026-03-30T00:00+02:00")
    calendar = run(app, *span, period="day", periods=1)
    rolling = run(app, *span, period="day", periods=1, windows="rolling")
    assert [(c.size, c.counts) for c in calendar.cohorts] == [(1, [1, 1])]  # the next local day
    assert [(c.size, c.counts) for c in rolling.cohorts] == [(1, [1, 0])]  # within 24 hours


def test_rolling_bounded_cell_persons(app: Flask) -> None:
    load(app, ROLLING)
    cell = {"cohort": "2026-03-02T00:00:00+00:00", "period": "day", "periods": 2}
    assert persons(app, "2026-03-02", "2026-03-04", k=1, windows="rolling", **cell) == ["b"]
    assert persons(app, "2026-03-02", "2026-03-04", k=2, windows="rolling", **cell) == ["a"]
    assert persons(app, "2026-03-02", "2026-03-04", k=1, **cell) == ["a", "b"]


def test_curve_counts_only_cohorts_that_could_reach_k() -> None:
    found = {(None, 0): (4, [4, 2, 1]), (None, 1): (6, [6, 3, 0]), (None, 2): (10, [10, 0, 0])}
    reachable = [[True, True, True], [True, True, False], [True, False, False]]
    assert _curve(found, None, reachable, 2) == [1.0, 5 / 10, 1 / 4]
    assert _curve({}, None, reachable, 2) == [None, None, None]


BREAKDOWN = [
    ("a", "view", "2026-03-02T10:00", {"src": "ads"}),
    ("a", "view", "2026-03-03T10:00", {"src": "seo"}),
    ("b", "view", "2026-03-02T11:00", {"src": "seo"}),
    ("b", "view", "2026-03-02T11:00", {"src": "ads"}),  # same instant: the smaller value
    ("b", "view", "2026-03-04T10:00"),
    ("c", "view", "2026-03-02T12:00"),  # no src
    ("c", "view", "2026-03-03T12:00", {"src": "ads"}),
    ("d", "view", "2026-03-03T09:00", {"src": "mail"}),
]


def breakdowns(result: RetentionResult) -> list[tuple[str | None, list[Any]]]:
    assert result.breakdowns is not None
    return [(b.value, grid(b.cohorts)) for b in result.breakdowns]


def test_breakdown_by_start_event_property(app: Flask) -> None:
    load(app, BREAKDOWN)
    options = {"period": "day", "periods": 1, "breakdown": "src", "breakdown_limit": 1}
    result = run(app, "2026-03-02", "2026-03-04", **options)
    assert result.breakdown == "src" and result.breakdown_type == "event"
    assert grid(result.cohorts) == [
        ("2026-03-02T00:00", 3, [3, 2]),
        ("2026-03-03T00:00", 1, [1, 0]),
    ]
    assert breakdowns(result) == [
        ("ads", [("2026-03-02T00:00", 2, [2, 1]), ("2026-03-03T00:00", 0, [0, 0])]),  # a, b
        ("$other", [("2026-03-02T00:00", 1, [1, 1]), ("2026-03-03T00:00", 1, [1, 0])]),  # c; d
    ]
    assert result.breakdowns is not None
    assert result.breakdowns[0].curve == [1.0, 0.5]
    assert result.breakdowns[1].curve == [1.0, 0.5]
    day = "2026-03-02T00:00:00+00:00"
    assert persons(
        app, "2026-03-02", "2026-03-04", cohort=day, k=1, breakdown_value="ads", **options
    ) == ["a"]
    assert persons(
        app, "2026-03-02", "2026-03-04", cohort=day, k=0, breakdown_value="$other", **options
    ) == ["c"]
    wide = run(app, "2026-03-02", "2026-03-04", **{**options, "breakdown_limit": 3})
    assert [value for value, _ in breakdowns(wide)] == ["ads", "mail", None]  # ties: by value
    options["breakdown_limit"] = 3
    assert persons(
        app, "2026-03-02", "2026-03-04", cohort=day, k=1, breakdown_value=None, **options
    ) == ["c"]


def test_breakdown_by_person_property(app: Flask) -> None:
    load(app, BREAKDOWN)
    with app.app_context():
        set_person_properties("a", {"plan": "pro"})
        set_person_properties("b", {"plan": "free"})
        set_person_properties("c", {"plan": "pro"})
    options = {"period": "day", "periods": 1, "breakdown": "plan", "breakdown_type": "person"}
    result = run(app, "2026-03-02", "2026-03-04", **options)
    assert breakdowns(result) == [
        ("pro", [("2026-03-02T00:00", 2, [2, 2]), ("2026-03-03T00:00", 0, [0, 0])]),  # a, c
        ("free", [("2026-03-02T00:00", 1, [1, 0]), ("2026-03-03T00:00", 0, [0, 0])]),  # b
        (None, [("2026-03-02T00:00", 0, [0, 0]), ("2026-03-03T00:00", 1, [1, 0])]),  # d
    ]
    day = "2026-03-02T00:00:00+00:00"
    assert persons(
        app, "2026-03-02", "2026-03-04", cohort=day, k=1, breakdown_value="pro", **options
    ) == ["a", "c"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"week_start": "tuesday"}, "week_start"),
        ({"windows": "sliding"}, "windows"),
        ({"windows": "rolling", "period": "month"}, "windows"),
        ({"breakdown": "src", "breakdown_type": "group"}, "breakdown_type"),
        ({"breakdown": "src", "breakdown_limit": 0}, "breakdown_limit"),
        ({"start_filters": [{"key": "x", "op": "like"}]}, "start_filters"),
        ({"return_filters": ["x"]}, "return_filters"),
    ],
)
def test_bad_options_name_the_field(app: Flask, options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        run(app, "2026-03-02", "2026-03-09", **options)
    assert error.value.field == field


def test_route_slices(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, BREAKDOWN)
    client = app.test_client()
    base = (
        "/umetrics/api/query/retention?date_from=2026-03-02&date_to=2026-03-04&period=day&periods=1"
    )
    answer = client.get(f"{base}&breakdown=src&breakdown_limit=1&windows=rolling")
    assert answer.status_code == 200, answer.json
    assert answer.json["windows"] == "rolling" and answer.json["curve"] == [
        1.0,
        0.75,
    ]  # a, b, c in window 1
    assert [b["value"] for b in answer.json["breakdowns"]] == ["ads", "$other"]
    assert answer.json["breakdowns"][0]["cohorts"][0]["counts"] == [
        2,
        2,
    ]  # a at 24 h, b at 47 h: window 1
    filtered = client.get(f'{base}&start_filters=[{{"key":"src","op":"eq","value":"mail"}}]').json
    assert [c["size"] for c in filtered["cohorts"]] == [0, 1]
    people = client.get(
        "/umetrics/api/query/retention/persons?date_from=2026-03-02&date_to=2026-03-04"
        "&period=day&period=1&periods=1&breakdown=src&breakdown_limit=1&breakdown_value=ads"
        "&cohort=2026-03-02T00:00:00%2B00:00"
    )
    assert people.status_code == 200, people.json
    assert [p["distinct_ids"] for p in people.json["persons"]] == [["a"]]
    for bad, field in [
        ("week_start=tuesday", "week_start"),
        ("windows=sliding", "windows"),
        ("period=month&windows=rolling", "windows"),
        ("breakdown_type=group&breakdown=src", "breakdown_type"),
        ("start_filters=nope", "start_filters"),
        ("return_filters=[1]", "return_filters"),
    ]:
        response = client.get(f"{base.replace('&period=day', '')}&{bad}")
        assert response.status_code == 400, (bad, response.json)
        assert field in response.json["error"]["message"], (bad, response.json)


# --- rolling windows and the curve against a Python reference ------------------------------

START = datetime(2026, 3, 2, tzinfo=timezone.utc)
DAY_US = 86_400_000_000


def ref_rolling(
    date_from: datetime, days: int, periods: int, mode: str, bounded: bool
) -> list[tuple[int, list[int]]]:
    """``[(size, counts)]`` per shown day: the k-th 24-hour window from each member's anchor."""
    by_person: dict[int, list[Any]] = {}
    for e in sorted(stored_events(), key=lambda e: (e.ts, e.id)):
        by_person.setdefault(e.person, []).append(e)
    first = int(date_from.timestamp() * 1_000_000)
    rows = []
    for p in range(days):
        low = first + p * DAY_US
        size, counts = 0, [0] * (periods + 1)
        for evs in by_person.values():
            starts = [e.ts for e in evs if e.active]
            if mode == "first_time":
                starts = starts[:1]
            inside = [t for t in starts if low <= t < low + DAY_US]
            if not inside:
                continue
            anchor = inside[0]
            size += 1
            for k in range(periods + 1):
                hit = any(
                    anchor + k * DAY_US <= e.ts
                    and (not bounded or e.ts < anchor + (k + 1) * DAY_US)
                    for e in evs
                    if e.active
                )
                counts[k] += hit
        rows.append((size, counts))
    return rows


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 80), st.booleans()), min_size=2, max_size=20
    ),
    links=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=2),
    data=st.data(),
)
def test_rolling_and_curve_match_the_reference(
    app: Flask, rows: list[Any], links: list[tuple[int, int]], data: st.DataObject
) -> None:
    clear_events(app)
    grid_step = timedelta(hours=5)  # crosses midnights at varying hours
    load(app, [(f"d{d}", "view", (START + n * grid_step).isoformat(), None, a) for d, n, a in rows])
    with app.app_context():
        for user, anon in links:
            identify(f"d{user}", anon_id=f"d{anon}")
    first_day = data.draw(st.integers(0, 6))
    days = data.draw(st.integers(1, 6))
    periods = data.draw(st.integers(1, 4))
    mode = data.draw(st.sampled_from(["first_time", "recurring"]))
    bounded = data.draw(st.booleans())
    date_from = START + timedelta(days=first_day)
    with app.app_context():
        ctx = report_context(date_from=date_from, date_to=date_from + timedelta(days=days))
        result = retention(
            ctx, period="day", periods=periods, mode=mode, bounded=bounded, windows="rolling"
        )
        expected = ref_rolling(date_from, days, periods, mode, bounded)
    assert [(c.size, c.counts) for c in result.cohorts] == expected
    members = sum(size for size, _ in expected)
    assert result.curve == [
        sum(counts[k] for _, counts in expected) / members if members else None
        for k in range(periods + 1)
    ]
