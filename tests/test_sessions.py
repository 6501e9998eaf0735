"""Sessions on hand-built events: timeout edges, client ids, inactive events, merges, medians."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_umetrics import UMetrics, identify
from flask_umetrics.events.validation import to_micros
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.sessions import (
    SessionSummary,
    session_summaries,
    session_summary,
    sessions_of_person,
)
from flask_umetrics.state import current_state

from .conftest import AppFactory, allow_all
from .events_data import at, load

pytestmark = pytest.mark.event_stores

PV = "$pageview"


def summary(app: Flask, date_from: str, date_to: str, **kwargs: str) -> SessionSummary:
    with app.app_context():
        ctx = report_context(date_from=at(date_from), date_to=at(date_to))
        return session_summary(ctx, **kwargs)


def numbers(result: SessionSummary) -> tuple[float, float, float, float, float]:
    return (
        result.count,
        result.median_duration,
        result.mean_duration,
        result.bounce_rate,
        result.pageviews_per_session,
    )


def test_a_gap_of_exactly_the_timeout_does_not_split(app: Flask) -> None:
    load(
        app,
        [
            ("a", PV, "2026-03-01T10:00:00"),
            ("a", PV, "2026-03-01T10:30:00"),  # gap = 1800 s exactly: same session
            ("a", PV, "2026-03-01T11:00:00.000001"),  # gap = 1800 s + 1 µs: a new session
            ("b", PV, "2026-03-01T12:00:00"),
            ("b", "click", "2026-03-01T12:00:00"),  # same timestamp: same session, 0 s
        ],
    )
    result = summary(app, "2026-03-01", "2026-03-02")
    # Durations 1800, 0 (bounce), 0 (two events at one instant: not a bounce).
    assert numbers(result) == (3, 0.0, 600.0, 1 / 3, 4 / 3)
    assert result.sampled is None


def test_the_timeout_comes_from_the_settings(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_SESSION_TIMEOUT=60)
    load(
        app,
        [
            ("a", PV, "2026-03-01T10:00:00"),
            ("a", PV, "2026-03-01T10:01:00"),  # 60 s: same session
            ("a", PV, "2026-03-01T10:02:00.000001"),  # 60 s + 1 µs: new session
            ("a", PV, "2026-03-01T10:03:00.000001"),  # 60 s: joins it
        ],
    )
    assert numbers(summary(app, "2026-03-01", "2026-03-02")) == (2, 60.0, 60.0, 0.0, 2.0)


def test_client_session_ids_win_and_never_mix_with_split_sessions(app: Flask) -> None:
    load(
        app,
        [
            ("b", PV, "2026-03-01T10:00", None, None, "s1"),
            ("b", "click", "2026-03-01T10:10"),  # no session id: its own, split by timeout
            ("b", "click", "2026-03-01T10:20"),
            ("b", PV, "2026-03-01T12:00", None, None, "s2"),  # a one-event client session
            ("b", PV, "2026-03-01T13:00", None, None, "s1"),  # 3 h later, still s1
        ],
    )
    # Sessions: s1 (10800 s, 2 page views), split (600 s, 0), s2 (0 s, 1): median of 3 = 600.
    assert numbers(summary(app, "2026-03-01", "2026-03-02")) == (3, 600.0, 3800.0, 1 / 3, 1.0)
    assert numbers(summary(app, "2026-03-01", "2026-03-02", pageview_event="click")) == (
        3,
        600.0,
        3800.0,
        1 / 3,
        2 / 3,
    )


def test_inactive_events_never_form_or_extend_sessions(app: Flask) -> None:
    load(
        app,
        [
            ("c", PV, "2026-03-01T10:00"),
            ("c", "email_sent", "2026-03-01T10:20", None, False),
            ("c", "email_sent", "2026-03-01T10:40", None, False),  # would bridge the gap
            ("c", PV, "2026-03-01T11:00"),  # 3600 s after c's last active event
            ("d", "email_sent", "2026-03-01T10:00", None, False),  # only inactive events
            ("d", "invoice", "2026-03-01T10:05", None, False, "s9"),  # even with a session id
        ],
    )
    assert numbers(summary(app, "2026-03-01", "2026-03-02")) == (2, 0.0, 0.0, 1.0, 1.0)


def test_a_merge_after_the_events_joins_sessions(app: Flask) -> None:
    load(
        app,
        [
            ("anon", PV, "2026-03-01T10:00"),
            ("anon", PV, "2026-03-01T10:10"),
            ("user", PV, "2026-03-01T10:25"),
            ("user", "buy", "2026-03-01T10:40"),
        ],
    )
    assert numbers(summary(app, "2026-03-01", "2026-03-02")) == (2, 750.0, 750.0, 0.0, 1.5)
    with app.app_context():
        identify("user", anon_id="anon")
    assert numbers(summary(app, "2026-03-01", "2026-03-02")) == (1, 2400.0, 2400.0, 0.0, 3.0)


RANGE_EDGES = [
    # Started at date_from - timeout: the event at date_from continues it; left out.
    ("e", PV, "2026-03-01T23:30:00"),
    ("e", PV, "2026-03-02T00:00:00"),
    # 1 µs more: the event at date_from starts a new session; counted.
    ("f", PV, "2026-03-01T23:29:59.999999"),
    ("f", "click", "2026-03-02T00:00:00"),
    # Starts in range, ends after date_to: counted with its whole length and views.
    ("g", PV, "2026-03-02T23:50:00"),
    ("g", PV, "2026-03-03T00:10:00"),
    # Starts at date_to: left out.
    ("h", PV, "2026-03-03T00:00:00"),
    # A client session whose first event is a day before the range: left out.
    ("i", PV, "2026-03-01T08:00", None, None, "old"),
    ("i", PV, "2026-03-02T09:00", None, None, "old"),
]


def test_a_session_belongs_to_the_range_of_its_first_event(app: Flask) -> None:
    load(app, RANGE_EDGES)
    # f (bounce, 0 s) and g (1200 s): median of two = their mean.
    assert numbers(summary(app, "2026-03-02", "2026-03-03")) == (2, 600.0, 600.0, 0.5, 1.0)


def test_several_ranges_at_once(app: Flask) -> None:
    """``session_summaries`` (one statement on ClickHouse, its session table spanning every
    range) gives each range what ``session_summary`` gives it alone."""
    load(app, RANGE_EDGES)
    days = [
        ("2026-03-02", "2026-03-03"),
        ("2026-03-01", "2026-03-02"),
        ("2026-03-05", "2026-03-06"),
    ]
    with app.app_context():
        contexts = [report_context(date_from=at(a), date_to=at(b)) for a, b in days]
        found = [numbers(result) for result in session_summaries(contexts)]
        assert found == [numbers(session_summary(ctx)) for ctx in contexts]
        assert found == [
            (2, 600.0, 600.0, 0.5, 1.0),
            # e (1800 s), f's page view (a bounce), i's client session (25 h).
            (3, 1800.0, (1800 + 0 + 90000) / 3, 1 / 3, 5 / 3),
            (0, 0.0, 0.0, 0.0, 0.0),
        ]
        filtered = report_context(
            date_from=at("2026-03-01"),
            date_to=at("2026-03-02"),
            filters=[{"key": "a", "value": "b"}],
        )
        with pytest.raises(ValueError, match="more than their range"):
            session_summaries([contexts[0], filtered])


def test_median_with_an_even_count_and_no_sessions(app: Flask) -> None:
    load(
        app,
        [
            ("a", PV, "2026-03-01T10:00:00"),
            ("a", PV, "2026-03-01T10:01:00"),  # 60 s
            ("b", PV, "2026-03-01T10:00:00"),
            ("b", PV, "2026-03-01T10:05:00"),  # 300 s
            ("c", PV, "2026-03-01T10:00:00"),
            ("c", PV, "2026-03-01T10:02:00"),  # 120 s
            ("d", PV, "2026-03-01T10:00:00", None, None, "long"),
            ("d", PV, "2026-03-01T10:50:00", None, None, "long"),  # 3000 s
        ],
    )
    assert numbers(summary(app, "2026-03-01", "2026-03-02")) == (4, 210.0, 870.0, 0.0, 2.0)
    assert numbers(summary(app, "2026-03-05", "2026-03-06")) == (0, 0.0, 0.0, 0.0, 0.0)


def test_filters_restrict_the_events_sessions_are_made_of(app: Flask) -> None:
    load(
        app,
        [
            ("a", PV, "2026-03-01T10:00", {"app": "web"}),
            ("a", PV, "2026-03-01T10:10", {"app": "ios"}),
            ("a", PV, "2026-03-01T10:20", {"app": "web"}),
        ],
    )
    with app.app_context():
        ctx = report_context(
            date_from=at("2026-03-01"),
            date_to=at("2026-03-02"),
            filters=[{"key": "app", "value": "web"}],
        )
        assert numbers(session_summary(ctx)) == (1, 1200.0, 1200.0, 0.0, 2.0)


def test_sessions_of_one_person_newest_first(app: Flask) -> None:
    load(
        app,
        [
            ("anon", PV, "2026-03-01T10:00"),
            ("user", PV, "2026-03-01T10:20"),
            ("user", PV, "2026-03-02T09:00", None, None, "s-1"),
            ("user", "buy", "2026-03-02T09:30", None, None, "s-1"),
            ("user", PV, "2026-03-03T08:00"),
            ("other", PV, "2026-03-03T08:00"),
        ],
    )
    with app.app_context():
        person_id = identify("user", anon_id="anon")
        scope = current_state().settings.default_scope
        sessions = sessions_of_person(scope, person_id, 10)
        assert [(s.start, s.end, s.duration, s.events, s.session_id) for s in sessions] == [
            ("2026-03-03T08:00:00+00:00", "2026-03-03T08:00:00+00:00", 0.0, 1, None),
            ("2026-03-02T09:00:00+00:00", "2026-03-02T09:30:00+00:00", 1800.0, 2, "s-1"),
            ("2026-03-01T10:00:00+00:00", "2026-03-01T10:20:00+00:00", 1200.0, 2, None),
        ]
        assert [s.session_id for s in sessions_of_person(scope, person_id, 2)] == [None, "s-1"]
        started_by = sessions_of_person(
            scope, person_id, 10, started_by_us=to_micros(at("2026-03-02T09:00"))
        )
        assert [s.session_id for s in started_by] == ["s-1", None]


def test_sessions_route(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(
        app,
        [
            ("a", PV, "2026-03-01T10:00"),
            ("a", "click", "2026-03-01T10:15"),
            ("b", "screen", "2026-03-01T11:00"),
        ],
    )
    client = app.test_client()
    span = "date_from=2026-03-01&date_to=2026-03-02"
    assert client.get(f"/umetrics/api/query/sessions?{span}").json == {
        "count": 2,
        "median_duration": 450.0,
        "mean_duration": 450.0,
        "bounce_rate": 0.5,
        "pageviews_per_session": 0.5,
        "sampled": None,
    }
    screens = client.get(f"/umetrics/api/query/sessions?{span}&pageview_event=screen").json
    assert screens["pageviews_per_session"] == 0.5
    assert client.get(f"/umetrics/api/query/sessions?{span}&pageview_event=").status_code == 400


def test_sampling_scales_the_count_only(app: Flask) -> None:
    load(app, [(f"p{i}", PV, "2026-03-01T10:00") for i in range(200)])
    load(app, [(f"p{i}", PV, "2026-03-01T10:10") for i in range(200)])
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-02"), sample=0.5)
        result = session_summary(ctx)
    assert result.sampled == 0.5
    assert 140 <= result.count <= 260 and result.count % 2 == 0  # about 100 persons kept, x 2
    assert numbers(result)[1:] == (600.0, 600.0, 0.0, 2.0)
