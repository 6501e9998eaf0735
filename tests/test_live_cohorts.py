"""The live feed (window edges, per-minute zero fill) and cohorts by first-seen period."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_umetrics import UMetrics, identify
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries import live as live_module
from flask_umetrics.queries.cohorts import CohortsResult, first_seen_cohorts
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.live import live

from .conftest import AppFactory, allow_all
from .events_data import at, load

pytestmark = pytest.mark.event_stores

NOW = "2026-03-01T10:30:00"


@pytest.fixture
def pinned_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_module, "now", lambda: at(NOW))


def load_live_events(app: Flask) -> None:
    load(
        app,
        [
            ("a", "too_old", "2026-03-01T09:59:59.999999"),  # 1 µs before the window
            ("a", "first", "2026-03-01T10:00:00"),  # exactly `since`: in, minute 0
            ("b", "end_of_minute_0", "2026-03-01T10:00:59.999999", {"plan": "pro"}),
            ("b", "minute_1", "2026-03-01T10:01:00"),
            ("c", "tie_1", "2026-03-01T10:15:00"),
            ("c", "tie_2", "2026-03-01T10:15:00"),  # same instant, later id
            ("c", "last_whole_second", "2026-03-01T10:29:59"),
            ("d", "now", NOW),  # exactly now: in, last minute
            ("d", "future", "2026-03-01T10:30:00.000001"),  # after now: out
        ],
    )
    load(app, [("x", "other_scope", "2026-03-01T10:20:00")], scope_id="other")


@pytest.mark.usefixtures("pinned_now")
def test_live_window_edges_and_per_minute_zero_fill(app: Flask) -> None:
    load_live_events(app)
    with app.app_context():
        feed = live()
    assert feed.since == "2026-03-01T10:00:00+00:00"
    assert feed.until == "2026-03-01T10:30:00+00:00"
    assert feed.count == 7
    assert [e.event for e in feed.events] == [
        "now",
        "last_whole_second",
        "tie_2",
        "tie_1",
        "minute_1",
        "end_of_minute_0",
        "first",
    ]
    assert len(feed.per_minute) == 30
    assert feed.per_minute[0].time == "2026-03-01T10:00:00+00:00"
    assert feed.per_minute[29].time == "2026-03-01T10:29:00+00:00"
    counts = [point.count for point in feed.per_minute]
    assert counts == [2, 1] + [0] * 13 + [2] + [0] * 13 + [2]
    minute_0 = feed.events[5]
    assert minute_0.distinct_id == "b"
    assert minute_0.timestamp == "2026-03-01T10:00:59.999999+00:00"
    assert minute_0.properties == {"plan": "pro"}
    assert minute_0.uuid and minute_0.uuid.startswith("default-2-b-")


@pytest.mark.usefixtures("pinned_now")
def test_live_limit_and_short_window(app: Flask) -> None:
    load_live_events(app)
    with app.app_context():
        top = live(limit=3)
        assert top.count == 7  # the count covers the whole window, not just the page
        assert [e.event for e in top.events] == ["now", "last_whole_second", "tie_2"]
        one = live(minutes=1)
        assert one.since == "2026-03-01T10:29:00+00:00"
        assert [(p.time, p.count) for p in one.per_minute] == [("2026-03-01T10:29:00+00:00", 2)]
        other = live("other", minutes=15)
        assert [e.event for e in other.events] == ["other_scope"]
        assert [p.count for p in other.per_minute] == [0] * 5 + [1] + [0] * 9
        for kwargs, field in [
            ({"minutes": 0}, "minutes"),
            ({"minutes": 1441}, "minutes"),
            ({"limit": 0}, "limit"),
        ]:
            with pytest.raises(ValidationError) as error:
                live(**kwargs)
            assert error.value.field == field


def test_live_now_defaults_to_the_clock(app: Flask) -> None:
    with app.app_context():
        feed = live(minutes=2)
    assert feed.count == 0 and feed.events == [] and len(feed.per_minute) == 2


@pytest.mark.usefixtures("pinned_now")
def test_live_route(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load_live_events(app)
    client = app.test_client()
    answer = client.get("/umetrics/api/query/live?minutes=5&limit=1")
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["since"] == "2026-03-01T10:25:00+00:00"
    assert body["count"] == 2
    assert [e["event"] for e in body["events"]] == ["now"]
    assert set(body["events"][0]) == {"uuid", "event", "distinct_id", "timestamp", "properties"}
    assert body["per_minute"] == [
        {"time": f"2026-03-01T10:2{m}:00+00:00", "count": 2 if m == 9 else 0} for m in range(5, 10)
    ]
    assert client.get("/umetrics/api/query/live").json["count"] == 7
    for bad in ("minutes=0", "minutes=1441", "limit=0", "limit=1001", "minutes=x"):
        response = client.get(f"/umetrics/api/query/live?{bad}")
        assert response.status_code == 400, (bad, response.json)
        assert bad.split("=")[0] in response.json["error"]["message"]


def sizes(result: CohortsResult) -> list[tuple[str, float]]:
    return [(c.start, c.size) for c in result.cohorts]


def test_weekly_cohorts_follow_merges(app: Flask) -> None:
    load(
        app,
        [
            ("a", "view", "2026-03-02T00:00:00"),  # Monday: week of Mar 2
            ("a", "view", "2026-03-20T00:00:00", {"src": "ad"}),
            ("b", "view", "2026-02-25T10:00:00"),  # first seen before the range: no cohort
            ("b", "view", "2026-03-03T10:00:00"),
            ("c", "view", "2026-03-08T23:59:59.999999"),  # Sunday: still week of Mar 2
            ("d", "view", "2026-03-09T00:00:00", {"src": "ad"}),  # next Monday
            ("anon", "view", "2026-03-10T10:00:00", None, False),  # inactive events count too
            ("user", "signup", "2026-03-17T10:00:00"),
            ("late", "view", "2026-03-23T00:00:00"),  # date_to is exclusive
        ],
    )
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-02"), date_to=at("2026-03-23"))
        before = first_seen_cohorts(ctx)
        assert before.period == "week"
        assert sizes(before) == [
            ("2026-03-02T00:00:00+00:00", 2),
            ("2026-03-09T00:00:00+00:00", 2),
            ("2026-03-16T00:00:00+00:00", 1),
        ]
        identify("user", anon_id="anon")  # after the events: user is first seen on Mar 10
        assert [c.size for c in first_seen_cohorts(ctx).cohorts] == [2, 2, 0]
        assert [c.size for c in first_seen_cohorts(ctx, period="day").cohorts][:8] == [
            1,
            0,
            0,
            0,
            0,
            0,
            1,
            1,
        ]
        # A range starting mid-week shows only the weeks that start inside it.
        midweek = report_context(date_from=at("2026-03-04"), date_to=at("2026-03-17"))
        assert sizes(first_seen_cohorts(midweek)) == [
            ("2026-03-09T00:00:00+00:00", 2),
            ("2026-03-16T00:00:00+00:00", 0),
        ]
        tiny = report_context(date_from=at("2026-03-04"), date_to=at("2026-03-05"))
        assert first_seen_cohorts(tiny).cohorts == []
        # Filters choose which events count as "seen": a is first seen from an ad on Mar 20.
        from_ads = report_context(
            date_from=at("2026-03-02"),
            date_to=at("2026-03-23"),
            filters=[{"key": "src", "value": "ad"}],
        )
        assert [c.size for c in first_seen_cohorts(from_ads).cohorts] == [0, 1, 1]
        with pytest.raises(ValidationError):
            first_seen_cohorts(ctx, period="hour")


def test_cohorts_in_a_dst_crossing_time_zone(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_TIMEZONE="Europe/Berlin")
    load(
        app,
        [
            ("y", "e", "2026-03-28T22:59:59.999999"),  # Mar 28 23:59:59 CET
            ("x", "e", "2026-03-28T23:00:00"),  # Mar 29 00:00 CET
            ("z", "e", "2026-03-29T21:59:59.999999"),  # Mar 29 23:59:59 CEST (a 23-hour day)
            ("w", "e", "2026-03-29T22:00:00"),  # Mar 30 00:00 CEST
            ("v", "e", "2026-03-31T22:30:00"),  # Apr 1 00:30 CEST
        ],
    )
    with app.app_context():
        days = report_context(
            date_from=at("2026-03-28T00:00+01:00"), date_to=at("2026-03-31T00:00+02:00")
        )
        assert sizes(first_seen_cohorts(days, period="day")) == [
            ("2026-03-28T00:00:00+01:00", 1),
            ("2026-03-29T00:00:00+01:00", 2),
            ("2026-03-30T00:00:00+02:00", 1),
        ]
        weeks = report_context(
            date_from=at("2026-03-23T00:00+01:00"), date_to=at("2026-04-06T00:00+02:00")
        )
        assert sizes(first_seen_cohorts(weeks)) == [
            ("2026-03-23T00:00:00+01:00", 3),  # Mon Mar 23 .. Sun Mar 29
            ("2026-03-30T00:00:00+02:00", 2),
        ]
        months = report_context(
            date_from=at("2026-03-01T00:00+01:00"), date_to=at("2026-05-01T00:00+02:00")
        )
        assert sizes(first_seen_cohorts(months, period="month")) == [
            ("2026-03-01T00:00:00+01:00", 4),
            ("2026-04-01T00:00:00+02:00", 1),
        ]


def test_cohorts_route(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, [("a", "view", "2026-03-02T10:00"), ("b", "view", "2026-03-10T10:00")])
    client = app.test_client()
    base = "/umetrics/api/query/cohorts?date_from=2026-03-02&date_to=2026-03-16"
    assert client.get(base).json == {
        "period": "week",
        "sampled": None,
        "cohorts": [
            {"start": "2026-03-02T00:00:00+00:00", "size": 1},
            {"start": "2026-03-09T00:00:00+00:00", "size": 1},
        ],
    }
    days = client.get(f"{base}&period=day").json["cohorts"]
    assert len(days) == 14 and sum(c["size"] for c in days) == 2
    response = client.get(f"{base}&period=hour")
    assert response.status_code == 400 and "period" in response.json["error"]["message"]


@pytest.mark.usefixtures("pinned_now")
def test_routes_need_metrics_view_on_the_scope(make_app: AppFactory) -> None:
    extension = UMetrics()
    extension.authorizer(
        lambda permission, scope_id: permission == "metrics.view" and scope_id == "mine"
    )
    client = make_app(extension).test_client()
    anonymous = make_app().test_client()
    paths = ["live", "cohorts", "attribution?conversion_event=purchase"]
    for path in paths:
        url = f"/umetrics/api/query/{path}"
        joiner = "&" if "?" in url else "?"
        assert client.get(f"{url}{joiner}scope_id=mine").status_code == 200, path
        assert client.get(f"{url}{joiner}scope_id=theirs").status_code == 403, path
        assert anonymous.get(url).status_code == 401, path
