"""Funnel trends and time to convert on hand-built events with known answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from flask_umetrics import UMetrics
from flask_umetrics.admin.tiles import _funnel as _funnel_tile
from flask_umetrics.api.router import to_json
from flask_umetrics.errors import ValidationError
from flask_umetrics.events.validation import to_micros
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.filters import PropertyFilter
from flask_umetrics.queries.funnel import FunnelExclusion, FunnelStep, funnel
from flask_umetrics.queries.funnel_modes import (
    FunnelTimeToConvertResult,
    FunnelTrendsResult,
    TimeBin,
    funnel_time_to_convert,
    funnel_trends,
)

from .conftest import AppFactory, allow_all
from .events_data import at, clear_events, load
from .reference_models import ref_funnel, ref_funnel_trends, ref_time_to_convert, stored_events
from .test_funnel import (
    BASE,
    GRID,
    NAMES,
    _load_random,
    _ref_step,
    event_rows,
    merges,
    run,
    slot,
    step_filter,
    steps,
)

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
    load(app, [("a", "signup", "2026-03-02T10:00", {"src": "ads"})])
    last = client.get(
        f"{base}&{three}&breakdown=src&breakdown_attribution=step&breakdown_attribution_step=0"
    )
    assert last.status_code == 200, last.json
    assert (last.json["breakdown_attribution"], last.json["breakdown_attribution_step"]) == (
        "step",
        0,
    )
    assert [b["value"] for b in last.json["breakdowns"]] == [None]  # a's chosen attempt: the first
    touch = client.get(f"{base}&{three}&breakdown=src&breakdown_attribution=last_touch").json
    assert [(b["value"], b["steps"][0]["count"]) for b in touch["breakdowns"]] == [
        (None, 4),
        ("ads", 1),
    ]
    for bad, field in [
        ("mode=sideways", "mode"),
        ("mode=trends&interval=hour", "interval"),
        ("mode=time_to_convert&from_step=2", "from_step"),
        ("mode=time_to_convert&to_step=5", "to_step"),
        ("mode=time_to_convert&bins=0", "bins"),
        ("mode=trends&breakdown=plan", "breakdown"),
        ("breakdown_attribution=first_touch", "breakdown_attribution"),
        ("breakdown=src&breakdown_attribution=middle", "breakdown_attribution"),
        ("breakdown=src&breakdown_attribution=step", "breakdown_attribution_step"),
        (
            "breakdown=src&breakdown_attribution=step&breakdown_attribution_step=3",
            "breakdown_attribution_step",
        ),
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


# --- breakdown attribution ----------------------------------------------------------------


def _load_sources(app: Flask) -> None:
    load(
        app,
        [
            ("a", "signup", "2026-03-01T10:00", {"src": "ads"}),
            ("a", "view", "2026-03-01T10:10", {"src": "mail"}),
            ("a", "buy", "2026-03-01T10:20"),
            ("b", "pageview", "2026-03-01T09:00", {"src": "x"}),  # no step: never attributed
            ("b", "signup", "2026-03-01T10:00"),
            ("b", "view", "2026-03-01T10:10", {"src": "seo"}),
            ("b", "buy", "2026-03-01T10:20", {"src": "ads"}),
            ("c", "signup", "2026-03-01T10:00", {"src": "mail"}),
            ("c", "view", "2026-03-01T10:10"),
        ],
    )


def split(app: Flask, order: str, **options: Any) -> list[tuple[str | None, list[Any]]]:
    result = run(app, SIGNUP_VIEW_BUY, order=order, breakdown="src", **options)
    assert result.breakdowns is not None
    return [(b.value, [s.count for s in b.steps]) for b in result.breakdowns]


@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
@pytest.mark.parametrize(
    ("attribution", "expected"),
    [
        ("entry", [("ads", [1, 1, 1]), ("mail", [1, 1, 0]), (None, [1, 1, 1])]),
        ("first_touch", [("ads", [1, 1, 1]), ("mail", [1, 1, 0]), ("seo", [1, 1, 1])]),
        ("last_touch", [("mail", [2, 2, 1]), ("ads", [1, 1, 1])]),
    ],
)
def test_breakdown_attribution_touch(
    app: Flask, order: str, attribution: str, expected: list[Any]
) -> None:
    _load_sources(app)
    assert split(app, order, breakdown_attribution=attribution) == expected


@pytest.mark.parametrize("order", ["ordered", "strict"])
@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, [("ads", [1, 1, 1]), ("mail", [1, 1, 0]), (None, [1, 1, 1])]),
        (1, [("mail", [1, 1, 1]), ("seo", [1, 1, 1]), (None, [1, 1, 0])]),
        # c never bought: no value; a's buy has none
        (2, [(None, [2, 2, 1]), ("ads", [1, 1, 1])]),
    ],
)
def test_breakdown_attribution_step(app: Flask, order: str, step: int, expected: list[Any]) -> None:
    _load_sources(app)
    result = run(
        app,
        SIGNUP_VIEW_BUY,
        order=order,
        breakdown="src",
        breakdown_attribution="step",
        breakdown_attribution_step=step,
    )
    assert result.breakdown_attribution == "step" and result.breakdown_attribution_step == step
    assert split(app, order, breakdown_attribution="step", breakdown_attribution_step=step) == (
        expected
    )


def test_step_attribution_finds_the_chains_own_event(app: Flask) -> None:
    load(
        app,
        [
            # Two views: the chain's is the first one after the signup, not the earlier view.
            ("a", "view", "2026-03-01T09:00", {"src": "early"}),
            ("a", "signup", "2026-03-01T10:00"),
            ("a", "view", "2026-03-01T10:10", {"src": "chain"}),
            ("a", "view", "2026-03-01T10:20", {"src": "late"}),
        ],
    )
    for order in ("ordered", "strict"):
        result = run(
            app,
            steps("signup", "view"),
            order=order,
            breakdown="src",
            breakdown_attribution="step",
            breakdown_attribution_step=1,
        )
        assert result.breakdowns is not None
        assert [(b.value, [s.count for s in b.steps]) for b in result.breakdowns] == [
            ("chain", [1, 1])
        ]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"breakdown_attribution": "middle"}, "breakdown_attribution"),
        ({"breakdown_attribution": "step"}, "breakdown_attribution_step"),
        (
            {"breakdown_attribution": "step", "breakdown_attribution_step": 3},
            "breakdown_attribution_step",
        ),
        (
            {"breakdown_attribution": "first_touch", "breakdown_attribution_step": 1},
            "breakdown_attribution_step",
        ),
        (
            {"breakdown_attribution": "step", "breakdown_attribution_step": 1, "order": "any"},
            "breakdown_attribution",
        ),
        ({"breakdown_attribution": "last_touch", "breakdown": None}, "breakdown_attribution"),
    ],
)
def test_breakdown_attribution_bad_arguments(
    app: Flask, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as error:
        run(app, SIGNUP_VIEW_BUY, **{"breakdown": "src", **options})
    assert error.value.field == field


# --- property tests against the reference model -------------------------------------------

SPREAD = 10 * 3600  # seconds between grid slots here: the entries fall on several days


def _random_steps(data: st.DataObject, order: str) -> list[FunnelStep]:
    names = data.draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=3))
    shared = {name: data.draw(step_filter) for name in NAMES}
    funnel_steps = []
    for name in names:
        wanted = data.draw(step_filter) if order == "any" else shared[name]
        filters = () if wanted is None else (PropertyFilter(key="p", value=wanted),)
        funnel_steps.append(FunnelStep(name, filters))
    return funnel_steps


def _spread(app: Flask, rows: list[Any]) -> None:
    clear_events(app)
    stored = []
    for distinct, name, n, p, active in rows:
        moment = at(BASE) + timedelta(seconds=n * SPREAD)
        stored.append(
            (f"d{distinct}", name, moment.isoformat(), {} if p is None else {"p": p}, active)
        )
    load(app, stored)


@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=event_rows, data=st.data())
def test_modes_match_the_reference(
    app: Flask, rows: list[Any], data: st.DataObject, order: str
) -> None:
    _spread(app, rows)
    funnel_steps = _random_steps(data, order)
    window = data.draw(st.sampled_from([1, 2, 5])) * SPREAD
    first = data.draw(st.integers(0, 3))
    last = data.draw(st.integers(first + 1, 7))
    to_step = data.draw(st.integers(1, len(funnel_steps) - 1))
    from_step = data.draw(st.integers(0, to_step - 1))
    bins = data.draw(st.integers(1, 4))
    start, stop = (
        at(BASE) + timedelta(seconds=first * SPREAD),
        at(BASE) + timedelta(seconds=last * SPREAD),
    )
    ref = [_ref_step(s) for s in funnel_steps]
    options: dict[str, Any] = {"window_seconds": window, "order": order}
    with app.app_context():
        ctx = report_context(date_from=start, date_to=stop)
        trend = funnel_trends(ctx, funnel_steps, **options)
        timed = funnel_time_to_convert(
            ctx, funnel_steps, from_step=from_step, to_step=to_step, bins=bins, **options
        )
        buckets = ctx.buckets("day")
        bounds = [to_micros(b) for b in buckets.starts] + [buckets.end_us]
        evs = stored_events()
    span = (to_micros(start), to_micros(stop), window * 1_000_000)
    expected = ref_funnel_trends(evs, ref, bounds, *span, order)
    target(float(sum(c for _, c in expected)))
    assert [(p.entered, p.converted) for p in trend.points] == expected
    converted, average, median, histogram = ref_time_to_convert(
        evs, ref, *span, order, from_step, to_step, bins
    )
    assert (timed.converted, timed.average_seconds, timed.median_seconds) == (
        converted,
        average,
        median,
    )
    assert [(b.start_seconds, b.end_seconds, b.count) for b in timed.histogram] == histogram


@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=event_rows, links=merges, data=st.data())
def test_attribution_matches_the_reference(
    app: Flask, rows: list[Any], links: list[tuple[int, int]], data: st.DataObject, order: str
) -> None:
    _load_random(app, rows, links)
    funnel_steps = _random_steps(data, order)
    kinds = ["entry", "first_touch", "last_touch"] + ([] if order == "any" else ["step"])
    kind = data.draw(st.sampled_from(kinds))
    step = data.draw(st.integers(0, len(funnel_steps) - 1)) if kind == "step" else None
    window = data.draw(st.sampled_from([1, 2, 3, 20])) * GRID
    first = data.draw(st.integers(0, 3))
    last = data.draw(st.integers(first + 1, 7))
    with app.app_context():
        ctx = report_context(date_from=slot(first), date_to=slot(last))
        result = funnel(
            ctx,
            funnel_steps,
            window_seconds=window,
            order=order,
            breakdown="p",
            breakdown_limit=100,
            breakdown_attribution=kind,
            breakdown_attribution_step=step,
        )
        expected = ref_funnel(
            stored_events(),
            [_ref_step(s) for s in funnel_steps],
            to_micros(slot(first)),
            to_micros(slot(last)),
            window * 1_000_000,
            order,
            breakdown="p",
            attribution=(kind, step or 0),
        )
    assert result.breakdowns is not None
    got = {b.value: [s.count for s in b.steps] for b in result.breakdowns}
    assert got == {None if v is None else str(v): c for v, c in expected.breakdown.items()}


# --- the dashboard's Funnels page -----------------------------------------------------------


def test_funnels_page_switches_mode(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension, SECRET_KEY="test-secret")
    load(
        app,
        [
            ("a", "view", "2026-03-02T10:00"),
            ("a", "signup", "2026-03-02T10:30"),
            ("a", "buy", "2026-03-02T13:00"),
            ("b", "view", "2026-03-02T11:00"),
            ("b", "signup", "2026-03-03T11:00"),
            ("c", "view", "2026-03-03T09:00"),
            ("a", "view", "2026-03-03T12:00"),
        ],
    )
    client = app.test_client()
    path = "/umetrics/admin/funnels?date_from=2026-03-02&date_to=2026-03-04&step=view&step=signup"

    def table(query: str, name: str) -> list[str]:
        answer = client.get(f"{path}&{query}&format=csv&table={name}")
        assert answer.status_code == 200, answer.text
        return answer.text.splitlines()

    assert table("step=buy&mode=trends", "funnel-trends") == [
        "time,entered,converted,conversion_rate",
        "2026-03-02,2,1,0.5",
        "2026-03-03,2,0,0",
    ]
    assert table("mode=time_to_convert&bins=2", "funnel-time") == [
        "seconds,persons",
        "1800 to 44100 s,1",
        "44100 to 86400 s,1",
    ]
    page = client.get(f"{path}&mode=time_to_convert&bins=2").text
    assert 'data-testid="funnel-median">12 h 15 min</strong>' in page
    assert 'data-testid="funnel-persons"' not in page
    assert '<option value="time_to_convert" selected>' in page
    steps_page = client.get(path).text
    assert 'data-testid="funnel-persons"' in steps_page
    assert '<option value="steps" selected>' in steps_page


def test_a_tile_draws_every_funnel_mode(app: Flask) -> None:
    _load_journeys(app)
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-03"))
        answers = [
            to_json(funnel_trends(ctx, SIGNUP_VIEW_BUY)),
            to_json(funnel_time_to_convert(ctx, SIGNUP_VIEW_BUY, bins=2)),
        ]
    trend, timed = (_funnel_tile(answer, {}).chart for answer in answers)
    assert trend is not None and trend.table.rows[0][1:] == [5, 2, 0.4]
    assert timed is not None and [row[1] for row in timed.table.rows] == [1, 1]
