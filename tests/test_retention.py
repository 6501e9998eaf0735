"""Retention cohorts on hand-built events with known answers, and against the reference model."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from flask_umetrics import UMetrics, identify
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.retention import RetentionResult, retention

from .conftest import AppFactory, allow_all
from .events_data import at, clear_events, load
from .reference_models import ref_retention, stored_events

pytestmark = pytest.mark.event_stores


def run(app: Flask, date_from: str, date_to: str, **options: Any) -> RetentionResult:
    with app.app_context():
        ctx = report_context(
            date_from=at(date_from), date_to=at(date_to), filters=options.pop("filters", None)
        )
        return retention(ctx, **options)


def table(result: RetentionResult) -> list[tuple[str, float, list[float]]]:
    return [(c.start[:10], c.size, c.counts) for c in result.cohorts]


WEEKLY = [
    ("a", "view", "2026-03-02T10:00"),  # Monday: cohort of Mar 2
    ("a", "view", "2026-03-10T10:00"),  # k = 1
    ("a", "view", "2026-03-23T00:00"),  # k = 3 (beyond periods=2)
    ("b", "view", "2026-03-08T23:59:59.999999"),  # last instant of the week of Mar 2
    ("b", "view", "2026-03-16T00:00"),  # first instant of k = 2
    ("c", "view", "2026-02-27T10:00"),  # first seen before the range
    ("c", "view", "2026-03-03T10:00"),
    ("d", "view", "2026-03-09T00:00"),  # cohort of Mar 9
    ("d", "view", "2026-03-17T10:00"),
    ("e", "email_sent", "2026-03-03T10:00", None, False),  # inactive: not a start
    ("e", "view", "2026-03-11T10:00"),  # so e starts on Mar 11
    ("f", "email_sent", "2026-03-04T10:00", None, False),  # only inactive: in no cohort
]


def test_first_time_bounded_weekly(app: Flask) -> None:
    load(app, WEEKLY)
    result = run(app, "2026-03-02", "2026-03-16", period="week", periods=2)
    assert result.period == "week" and result.mode == "first_time" and result.bounded
    assert table(result) == [
        ("2026-03-02", 2, [2, 1, 1]),  # a, b
        ("2026-03-09", 2, [2, 1, 0]),  # d, e
    ]
    assert result.cohorts[0].start == "2026-03-02T00:00:00+00:00"
    assert result.cohorts[0].fractions == [1.0, 0.5, 0.5]


def test_unbounded_counts_any_later_return(app: Flask) -> None:
    load(app, WEEKLY)
    result = run(app, "2026-03-02", "2026-03-16", period="week", periods=2, bounded=False)
    assert table(result) == [
        ("2026-03-02", 2, [2, 2, 2]),  # a returns in week 3, b in week 2
        ("2026-03-09", 2, [2, 1, 0]),  # d's last return is 1 week later, e's in its own week
    ]


def test_recurring_puts_a_person_in_every_start_period(app: Flask) -> None:
    load(app, WEEKLY)
    result = run(app, "2026-03-02", "2026-03-16", period="week", periods=2, mode="recurring")
    assert table(result) == [
        ("2026-03-02", 3, [3, 1, 1]),  # a, b, c
        ("2026-03-09", 3, [3, 1, 1]),  # a, d, e: d returns at k = 1, a at k = 2
    ]


def test_named_events_count_even_when_inactive(app: Flask) -> None:
    load(
        app,
        [
            ("a", "signup", "2026-03-02T10:00"),
            ("a", "buy", "2026-03-10T10:00", None, False),  # named: counts though inactive
            ("b", "signup", "2026-03-03T10:00"),
            ("b", "view", "2026-03-10T10:00"),
            ("c", "buy", "2026-03-02T09:00"),  # before c's signup, same week: k = 0
            ("c", "signup", "2026-03-04T10:00"),
        ],
    )
    result = run(
        app,
        "2026-03-02",
        "2026-03-09",
        start_event="signup",
        return_event="buy",
        period="week",
        periods=2,
    )
    assert table(result) == [("2026-03-02", 3, [1, 1, 0])]
    assert result.start_event == "signup" and result.return_event == "buy"
    with_default_return = run(
        app, "2026-03-02", "2026-03-09", start_event="signup", period="week", periods=1
    )
    assert table(with_default_return) == [("2026-03-02", 3, [3, 1])]  # a's buy is inactive


def test_day_cohorts_follow_the_time_zone_across_dst(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_TIMEZONE="Europe/Berlin")
    load(
        app,
        [
            ("a", "view", "2026-03-28T23:30"),  # Mar 29 00:30 CET
            ("a", "view", "2026-03-29T22:30"),  # Mar 30 00:30 CEST: k = 1
            ("b", "view", "2026-03-28T22:59"),  # Mar 28 23:59 CET
            ("b", "view", "2026-03-29T21:59"),  # Mar 29 23:59 CEST (a 23-hour day): k = 1
            ("c", "view", "2026-03-27T23:00"),  # Mar 28 00:00 CET, the first instant
        ],
    )
    result = run(app, "2026-03-28T00:00+01:00", "2026-03-31T00:00+02:00", period="day", periods=1)
    assert [(c.start, c.size, c.counts) for c in result.cohorts] == [
        ("2026-03-28T00:00:00+01:00", 2, [2, 1]),
        ("2026-03-29T00:00:00+01:00", 1, [1, 1]),
        ("2026-03-30T00:00:00+02:00", 0, [0, 0]),
    ]
    utc = make_app()  # the same events in UTC days
    with utc.app_context():
        ctx = report_context(date_from=at("2026-03-28"), date_to=at("2026-03-31"))
        in_utc = retention(ctx, period="day", periods=1)
    assert table(in_utc) == [
        ("2026-03-28", 2, [2, 2]),  # c's first event is on Mar 27 in UTC
        ("2026-03-29", 0, [0, 0]),
        ("2026-03-30", 0, [0, 0]),
    ]


def test_only_periods_starting_in_the_range_are_shown(app: Flask) -> None:
    load(
        app,
        [
            ("a", "view", "2026-03-20T10:00"),  # March starts before date_from: not shown
            ("a", "view", "2026-04-03T10:00"),
            ("b", "view", "2026-04-30T23:59"),
            ("b", "view", "2026-05-02T10:00"),
            ("c", "view", "2026-05-03T10:00"),  # May starts at date_to: not shown
        ],
    )
    result = run(app, "2026-03-15", "2026-05-01", period="month", periods=1)
    assert table(result) == [("2026-04-01", 1, [1, 1])]
    # The last cohort period covers its whole length, also after date_to.
    load(app, [("d", "view", "2026-03-07T10:00")], scope_id="default")
    weeks = run(app, "2026-03-02", "2026-03-05", period="week", periods=1)
    assert table(weeks) == [("2026-03-02", 1, [1, 0])]


def test_merges_after_the_events_are_retroactive(app: Flask) -> None:
    load(app, [("anon-1", "view", "2026-03-02T10:00"), ("user-1", "view", "2026-03-10T10:00")])
    before = run(app, "2026-03-02", "2026-03-16", period="week", periods=1)
    assert table(before) == [("2026-03-02", 1, [1, 0]), ("2026-03-09", 1, [1, 0])]
    with app.app_context():
        identify("user-1", anon_id="anon-1")
    after = run(app, "2026-03-02", "2026-03-16", period="week", periods=1)
    assert table(after) == [("2026-03-02", 1, [1, 1]), ("2026-03-09", 0, [0, 0])]
    assert after.cohorts[1].fractions == [0.0, 0.0]


def test_report_filters_apply_to_start_and_return_events(app: Flask) -> None:
    load(
        app,
        [
            ("a", "view", "2026-03-02T10:00", {"plan": "pro"}),
            ("a", "view", "2026-03-10T10:00", {"plan": "free"}),
            ("b", "view", "2026-03-03T10:00", {"plan": "free"}),
            ("b", "view", "2026-03-11T10:00", {"plan": "pro"}),
        ],
    )
    pro = [{"key": "plan", "value": "pro"}]
    result = run(app, "2026-03-02", "2026-03-16", period="week", periods=1, filters=pro)
    assert table(result) == [("2026-03-02", 1, [1, 0]), ("2026-03-09", 1, [1, 0])]


def test_sampling_scales_sizes_and_counts(app: Flask) -> None:
    rows = []
    for i in range(60):
        rows += [(f"p{i}", "view", "2026-03-02T10:00"), (f"p{i}", "view", "2026-03-10T10:00")]
    load(app, rows)
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-02"), date_to=at("2026-03-09"), sample=0.5)
        result = retention(ctx, period="week", periods=1)
    [cohort] = result.cohorts
    assert result.sampled == 0.5
    assert cohort.size % 2 == 0 and cohort.counts == [cohort.size, cohort.size]
    assert cohort.fractions == [1.0, 1.0]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"period": "year"}, "period"),
        ({"mode": "sometimes"}, "mode"),
        ({"periods": 0}, "periods"),
    ],
)
def test_bad_arguments(app: Flask, options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        run(app, "2026-03-02", "2026-03-09", **options)
    assert error.value.field == field


def test_retention_route(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, WEEKLY)
    client = app.test_client()
    base = "/umetrics/api/query/retention?date_from=2026-03-02&date_to=2026-03-16"
    answer = client.get(f"{base}&periods=2")
    assert answer.status_code == 200, answer.json
    assert answer.json["period"] == "week"
    assert answer.json["cohorts"] == [
        {
            "start": "2026-03-02T00:00:00+00:00",
            "size": 2,
            "counts": [2, 1, 1],
            "fractions": [1.0, 0.5, 0.5],
        },
        {
            "start": "2026-03-09T00:00:00+00:00",
            "size": 2,
            "counts": [2, 1, 0],
            "fractions": [1.0, 0.5, 0.0],
        },
    ]
    unbounded = client.get(f"{base}&periods=2&bounded=false&mode=recurring").json
    assert [c["counts"] for c in unbounded["cohorts"]] == [[3, 2, 2], [3, 2, 1]]
    named = client.get(f"{base}&periods=1&period=day&start_event=view&return_event=view").json
    assert len(named["cohorts"]) == 14 and named["cohorts"][0]["counts"] == [1, 0]
    assert len(client.get(base).json["cohorts"][0]["counts"]) == 9  # default periods=8
    for bad, field in [
        ("periods=0", "periods"),
        ("periods=53", "periods"),
        ("period=year", "period"),
        ("mode=sometimes", "mode"),
        ("bounded=maybe", "bounded"),
        ("start_event=", "start_event"),
    ]:
        response = client.get(f"{base}&{bad}")
        assert response.status_code == 400, (bad, response.json)
        assert field in response.json["error"]["message"], (bad, response.json)


# --- property tests against the reference model -------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 3, 23, tzinfo=BERLIN)  # a Monday; DST starts on Sunday Mar 29
GRID = timedelta(hours=7)  # crosses midnights at varying local hours


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.sampled_from(["a", "b"]),
            st.integers(0, 60),  # about 17 days of 7-hour slots
            st.booleans(),
        ),
        min_size=3,
        max_size=24,
    ),
    links=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=3),
    data=st.data(),
)
def test_retention_matches_the_reference(
    berlin_app: Flask, rows: list[Any], links: list[tuple[int, int]], data: st.DataObject
) -> None:
    app = berlin_app
    clear_events(app)
    load(
        app,
        [
            (f"d{d}", name, (START + n * GRID).isoformat(), None, active)
            for d, name, n, active in rows
        ],
    )
    with app.app_context():
        for user, anon in links:
            identify(f"d{user}", anon_id=f"d{anon}")
    period = data.draw(st.sampled_from(["day", "week"]))
    first_day = data.draw(st.integers(0, 8))
    days = data.draw(st.integers(1, 9))
    date_from = START + timedelta(days=first_day)  # local midnights (aware, Berlin)
    date_to = START + timedelta(days=first_day + days)
    options: dict[str, Any] = {
        "start_event": data.draw(st.sampled_from([None, "a"])),
        "return_event": data.draw(st.sampled_from([None, "b"])),
        "period": period,
        "periods": data.draw(st.integers(1, 3)),
        "mode": data.draw(st.sampled_from(["first_time", "recurring"])),
        "bounded": data.draw(st.booleans()),
    }
    with app.app_context():
        result = retention(report_context(date_from=date_from, date_to=date_to), **options)
        expected = ref_retention(stored_events(), BERLIN, date_from, date_to, **options)
    target(float(sum(sum(counts) for _, _, counts in expected)))
    assert [(c.start, c.size, c.counts) for c in result.cohorts] == expected
