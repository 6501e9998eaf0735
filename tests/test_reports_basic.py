"""Volume, trends, top and active users on hand-built events with known answers."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from flask_umetrics import UMetrics, identify
from flask_umetrics.db.tables import person_distinct_ids
from flask_umetrics.queries.active import active_user_series, active_users
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.top import top_events, top_property_values
from flask_umetrics.queries.trends import trends, volume
from flask_umetrics.state import current_state

from .conftest import AppFactory, allow_all
from .events_data import at, load

pytestmark = pytest.mark.event_stores


def counts(result) -> list[int]:  # type: ignore[no-untyped-def]
    return [point.count for point in result.series]


def values(series) -> list[float]:  # type: ignore[no-untyped-def]
    return [point.value for point in series]


def test_volume_buckets_are_half_open_and_zero_filled(app: Flask) -> None:
    load(
        app,
        [
            ("a", "view", "2026-03-01T00:00:00"),  # first instant of day 1
            ("a", "view", "2026-03-01T23:59:59.999999"),  # last instant of day 1
            ("b", "view", "2026-03-02T00:00:00"),
            ("b", "view", "2026-02-28T23:59:59.999999"),  # before the range
            ("b", "view", "2026-03-04T00:00:00"),  # date_to is exclusive
            ("c", "click", "2026-03-02T12:00:00"),
        ],
    )
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-04"))
        result = volume(ctx, event="view")
        assert [p.time for p in result.series] == [
            "2026-03-01T00:00:00+00:00",
            "2026-03-02T00:00:00+00:00",
            "2026-03-03T00:00:00+00:00",
        ]
        assert counts(result) == [2, 1, 0]
        assert counts(volume(ctx)) == [2, 2, 0]
        assert (
            counts(volume(ctx, interval="hour"))[:2] == [1, 0]
            and len(volume(ctx, interval="hour").series) == 72
        )


def test_day_buckets_follow_the_time_zone_across_dst(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_TIMEZONE="Europe/Berlin")
    load(
        app,
        [
            ("a", "e", "2026-03-27T23:30:00"),  # 28th 00:30 CET
            ("a", "e", "2026-03-28T22:59:00"),  # 28th 23:59 CET
            ("a", "e", "2026-03-28T23:00:00"),  # 29th 00:00 CET (DST starts at 02:00)
            ("a", "e", "2026-03-29T21:59:00"),  # 29th 23:59 CEST: the 29th has 23 hours
            ("a", "e", "2026-03-29T22:00:00"),  # 30th 00:00 CEST
        ],
    )
    with app.app_context():
        ctx = report_context(
            date_from=at("2026-03-28T00:00+01:00"), date_to=at("2026-03-31T00:00+02:00")
        )
        result = volume(ctx)
        assert [p.time for p in result.series] == [
            "2026-03-28T00:00:00+01:00",
            "2026-03-29T00:00:00+01:00",
            "2026-03-30T00:00:00+02:00",
        ]
        assert counts(result) == [2, 2, 1]
        hours = volume(ctx, interval="hour")
        assert len(hours.series) == 24 + 23 + 24


def test_week_and_month_buckets(app: Flask) -> None:
    load(
        app,
        [
            ("a", "e", "2026-03-01T10:00"),  # Sunday: week of Monday Feb 23
            ("a", "e", "2026-03-02T10:00"),  # Monday
            ("a", "e", "2026-03-08T23:59"),  # Sunday, same week
            ("a", "e", "2026-03-09T00:00"),  # next Monday
            ("a", "e", "2026-04-01T00:00"),
        ],
    )
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-04-02"))
        weeks = volume(ctx, interval="week")
        assert weeks.series[0].time == "2026-02-23T00:00:00+00:00"
        assert counts(weeks)[:3] == [1, 2, 1]
        months = volume(ctx, interval="month")
        assert [(p.time[:7], p.count) for p in months.series] == [("2026-03", 4), ("2026-04", 1)]


def test_unique_persons_count_merged_identities_once(app: Flask) -> None:
    load(
        app,
        [
            ("anon-1", "view", "2026-03-01T10:00"),
            ("anon-1", "view", "2026-03-01T11:00"),
            ("user-1", "view", "2026-03-01T12:00"),
            ("user-2", "view", "2026-03-01T13:00"),
            ("anon-2", "view", "2026-03-02T09:00"),
        ],
    )
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-03"))
        before = trends(ctx, math="unique_persons")
        assert values(before.results[0].series) == [3.0, 1.0]
        identify("user-1", anon_id="anon-1")  # after the events: retroactive
        identify("user-2", anon_id="anon-2")
        after = trends(ctx, math="unique_persons")
        assert values(after.results[0].series) == [2.0, 1.0]
        assert after.results[0].total is None  # uniques do not add up across buckets


def test_property_math_and_breakdown(app: Flask) -> None:
    load(
        app,
        [
            ("a", "buy", "2026-03-01T10:00", {"amount": 10, "plan": "pro"}),
            ("b", "buy", "2026-03-01T11:00", {"amount": 30.5, "plan": "pro"}),
            (
                "c",
                "buy",
                "2026-03-01T12:00",
                {"amount": "99", "plan": "team"},
            ),  # text: not a number
            ("d", "buy", "2026-03-02T12:00", {"amount": 4, "plan": "free"}),
            ("e", "buy", "2026-03-02T13:00", {"amount": 6}),
            ("f", "buy", "2026-03-02T14:00", {"amount": 1, "plan": "enterprise"}),
        ],
    )
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-03"))
        assert values(trends(ctx, math="sum", property="amount").results[0].series) == [40.5, 11.0]
        assert values(trends(ctx, math="avg", property="amount").results[0].series) == [
            20.25,
            11 / 3,
        ]
        assert values(trends(ctx, math="min", property="amount").results[0].series) == [10.0, 1.0]
        assert values(trends(ctx, math="max", property="amount").results[0].series) == [30.5, 6.0]
        split = trends(ctx, breakdown="plan", breakdown_limit=2)
        by_value = {r.breakdown_value: values(r.series) for r in split.results}
        # Top 2 by count: pro (2), then the tie of 1 broken by name: enterprise.
        assert by_value == {"pro": [2.0, 0.0], "enterprise": [0.0, 1.0], "$other": [1.0, 2.0]}
        assert sum(r.total or 0 for r in split.results) == 6


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([{"key": "plan", "op": "eq", "value": "pro"}], 2),
        ([{"key": "plan", "op": "neq", "value": "pro"}], 4),  # missing counts as "not pro"
        ([{"key": "amount", "op": "gt", "value": 5}], 3),
        ([{"key": "amount", "op": "lte", "value": 4}], 2),
        ([{"key": "plan", "op": "contains", "value": "ENTER"}], 1),
        ([{"key": "plan", "op": "in", "value": ["free", "team"]}], 2),
        ([{"key": "plan", "op": "not_in", "value": ["free", "team"]}], 4),
        ([{"key": "plan", "op": "is_not_set"}], 1),
        ([{"key": "trial", "op": "eq", "value": True}], 1),
        (
            [
                {"key": "plan", "op": "eq", "value": "pro"},
                {"key": "amount", "op": "gte", "value": 30},
            ],
            1,
        ),
    ],
)
def test_property_filters(app: Flask, filters: list, expected: int) -> None:
    load(
        app,
        [
            ("a", "buy", "2026-03-01T10:00", {"amount": 10, "plan": "pro", "trial": True}),
            ("b", "buy", "2026-03-01T11:00", {"amount": 30.5, "plan": "pro", "trial": False}),
            ("c", "buy", "2026-03-01T12:00", {"amount": "99", "plan": "team"}),
            ("d", "buy", "2026-03-02T12:00", {"amount": 4, "plan": "free"}),
            ("e", "buy", "2026-03-02T13:00", {"amount": 6}),
            ("f", "buy", "2026-03-02T14:00", {"amount": 1, "plan": "enterprise"}),
        ],
    )
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-03"), filters=filters)
        assert sum(counts(volume(ctx))) == expected


def test_top_events_and_values(app: Flask) -> None:
    load(
        app,
        [
            ("a", "view", "2026-03-01T10:00", {"path": "/"}),
            ("a", "view", "2026-03-01T10:01", {"path": "/pricing"}),
            ("b", "view", "2026-03-01T10:02", {"path": "/"}),
            ("b", "view", "2026-03-01T10:03"),  # no path: left out of values
            ("b", "click", "2026-03-01T10:04"),
            ("c", "buy", "2026-03-01T10:05"),
            ("c", "buy", "2026-03-01T10:06"),
            ("c", "apply", "2026-03-01T10:07"),
            ("c", "apply", "2026-03-01T10:08"),
        ],
    )
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-02"))
        top = top_events(ctx)
        assert [(i.key, i.count) for i in top.items] == [
            ("view", 4),
            ("apply", 2),
            ("buy", 2),
            ("click", 1),
        ]
        assert [(i.key, i.count) for i in top_events(ctx, limit=2).items] == [
            ("view", 4),
            ("apply", 2),
        ]
        paths = top_property_values(ctx, event="view", property="path")
        assert [(i.key, i.count) for i in paths.items] == [("/", 2), ("/pricing", 1)]


def test_active_users_and_series(app: Flask) -> None:
    load(
        app,
        [
            ("a", "view", "2026-03-01T10:00"),
            ("a", "view", "2026-03-03T10:00"),
            ("b", "view", "2026-03-03T11:00"),
            ("c", "email_sent", "2026-03-03T12:00", None, False),  # not active
            ("d", "view", "2026-02-20T12:00"),  # 9 days before Mar 1
            ("e", "view", "2026-02-23T12:00"),  # 6 days before Mar 1
        ],
    )
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-04"))
        assert active_users(ctx).count == 2
        dau = active_user_series(ctx, window="dau")
        assert [(p.time[:10], p.value) for p in dau.series] == [
            ("2026-03-01", 1),
            ("2026-03-02", 0),
            ("2026-03-03", 2),
        ]
        # WAU(Mar 1) covers Feb 23..Mar 1: a, e. WAU(Mar 2), Feb 24..Mar 2: a only (e's day has
        # left the window). WAU(Mar 3), Feb 25..Mar 3: a, b.
        assert values(active_user_series(ctx, window="wau").series) == [2, 1, 2]
        # MAU(d) covers 30 days: d (Feb 20) is inside for every day shown.
        assert values(active_user_series(ctx, window="mau").series) == [3, 3, 4]


def test_sampling_keeps_whole_persons_and_scales(app: Flask) -> None:
    rows = [(f"p{i}", "view", "2026-03-01T10:00") for i in range(200)]
    rows += [(f"p{i}", "view", "2026-03-01T11:00") for i in range(200)]
    load(app, rows)
    with app.app_context():
        with current_state().engine.connect() as connection:
            person_ids = connection.execute(select(person_distinct_ids.c.person_id)).scalars()
            # The documented hash: (person_id * 2654435761) % 10000 < rate * 10000.
            kept = sum(1 for pid in person_ids if (pid * 2654435761) % 10_000 < 5_000)
        assert 0 < kept < 200
        full = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-02"))
        half = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-02"), sample=0.5)
        assert counts(volume(full)) == [400]
        sampled = volume(half)
        assert sampled.sampled == 0.5
        assert counts(sampled) == [kept * 2 * 2]  # both events of each kept person, scaled by 2
        assert active_users(half).count == kept * 2
        assert trends(half, math="unique_persons").results[0].series[0].value == kept * 2


def test_report_routes(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(
        app,
        [
            ("a", "view", "2026-03-01T10:00", {"plan": "pro"}),
            ("b", "view", "2026-03-02T10:00", {"plan": "free"}),
        ],
    )
    client = app.test_client()
    base = "/umetrics/api/query"
    span = "date_from=2026-03-01&date_to=2026-03-03"
    assert client.get(f"{base}/volume?{span}").json == {
        "interval": "day",
        "sampled": None,
        "previous": None,
        "series": [
            {"time": "2026-03-01T00:00:00+00:00", "count": 1},
            {"time": "2026-03-02T00:00:00+00:00", "count": 1},
        ],
    }
    filtered = client.get(f'{base}/volume?{span}&filters=[{{"key":"plan","value":"pro"}}]').json
    assert [p["count"] for p in filtered["series"]] == [1, 0]
    assert client.get(f"{base}/top?{span}").json["items"] == [{"key": "view", "count": 2}]
    assert client.get(f"{base}/active?{span}").json["count"] == 2
    assert [p["value"] for p in client.get(f"{base}/active?{span}&series=dau").json["series"]] == [
        1,
        1,
    ]
    trend = client.get(f"{base}/trends?{span}&math=unique_persons&breakdown=plan").json
    assert {r["breakdown_value"] for r in trend["results"]} == {"pro", "free"}
    for bad, field in [
        ("interval=year", "interval"),
        ("math=median", "math"),
        ("filters=nope", "filters"),
        ("sample=2", "sample"),
        ("date_from=2026-03-05&date_to=2026-03-01", "date_from"),
        ('filters=[{"key":"a","op":"gt","value":"x"}]', "filters"),
    ]:
        response = client.get(f"{base}/trends?{bad}")
        assert response.status_code == 400, (bad, response.json)
        assert field in response.json["error"]["message"], (bad, response.json)
    assert client.get(f"{base}/top?property=plan").status_code == 400
