"""Funnel correlation on hand-built events with known contingency tables and odds ratios."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from flask_umetrics import UMetrics, create_api_key, identify
from flask_umetrics.errors import ValidationError
from flask_umetrics.events.validation import to_micros
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.funnel import FunnelExclusion, FunnelStep
from flask_umetrics.queries.funnel_correlation import (
    FunnelCorrelationResult,
    funnel_correlation,
    odds_ratio,
)

from .conftest import AppFactory, allow_all
from .events_data import at, clear_events, load
from .reference_models import (
    Ev,
    RefExclusion,
    RefStep,
    _by_person,
    ref_attempts,
    stored_events,
)
from .test_funnel import GRID, merges, slot

pytestmark = pytest.mark.event_stores

HOUR = 3600
SIGNUP_BUY = [FunnelStep("signup"), FunnelStep("buy")]
URL = "/umetrics/api/query/funnel/correlation"
QUERY = "date_from=2026-03-01&date_to=2026-03-08&step=signup&step=buy&window=3600"

#: Converted: a, b, e. Dropped: c, d, f. Window one hour.
JOURNEYS: list[tuple[Any, ...]] = [
    ("a", "signup", "2026-03-01T10:00"),
    ("a", "video", "2026-03-01T10:10"),
    ("a", "share", "2026-03-01T10:15"),
    ("a", "buy", "2026-03-01T10:30"),
    ("a", "video", "2026-03-01T10:31"),  # after converting: not counted
    ("a", "faq", "2026-03-01T10:40"),  # after converting: not counted
    ("b", "signup", "2026-03-02T10:00"),
    ("b", "video", "2026-03-02T10:05"),
    ("b", "video", "2026-03-02T10:06"),  # twice: one person
    ("b", "buy", "2026-03-02T10:20"),
    ("c", "signup", "2026-03-03T10:00"),
    ("c", "help", "2026-03-03T10:10"),
    ("c", "share", "2026-03-03T10:20"),
    ("d", "signup", "2026-03-04T10:00"),
    ("d", "help", "2026-03-04T10:50"),
    ("d", "video", "2026-03-04T11:00"),  # the end of the window: outside (open interval)
    ("d", "faq", "2026-03-04T11:30"),  # past the window
    ("e", "signup", "2026-03-05T10:00"),
    ("e", "buy", "2026-03-05T10:30"),
    ("f", "video", "2026-03-06T09:59"),  # before the entry
    ("f", "signup", "2026-03-06T10:00"),
    ("f", "faq", "2026-03-06T10:00"),  # at the entry's time: outside (open interval)
    ("f", "signup", "2026-03-06T10:20"),  # a step's name: never a candidate
    ("g", "video", "2026-03-06T10:00"),  # never entered
    ("g", "help", "2026-03-06T10:01"),
]


def run(
    app: Flask,
    funnel_steps: list[FunnelStep] = SIGNUP_BUY,
    date_from: str = "2026-03-01",
    date_to: str = "2026-03-08",
    **options: Any,
) -> FunnelCorrelationResult:
    options.setdefault("window_seconds", HOUR)
    with app.app_context():
        ctx = report_context(
            date_from=at(date_from), date_to=at(date_to), filters=options.pop("filters", None)
        )
        return funnel_correlation(ctx, funnel_steps, **options)


def table(result: FunnelCorrelationResult) -> list[tuple[str, Any, Any, float, str]]:
    return [
        (e.event, e.success_count, e.failure_count, e.odds_ratio, e.correlation_type)
        for e in result.events
    ]


def test_odds_ratio_is_posthogs_smoothed_ratio() -> None:
    # Watched the video: 5 of 6 converted; did not: 2 of 12 (PostHog's example, with the prior).
    assert odds_ratio(5, 1, 7, 11) == pytest.approx((6 / 2) / (3 / 11))
    assert odds_ratio(0, 0, 0, 0) == 1


def test_events_between_entry_and_conversion_or_window_end(app: Flask) -> None:
    load(app, JOURNEYS)
    result = run(app)
    assert (result.success_total, result.failure_total, result.skewed) == (3, 3, False)
    # video: 2 of 3 converted, 0 of 3 dropped: (3/1) / (2/4) = 6.
    # help: 0 converted, 2 dropped: (1/3) / (4/2) = 1/6. share: one each: exactly 1, a failure.
    assert table(result) == [
        ("video", 2, 0, 6.0, "success"),
        ("help", 0, 2, pytest.approx(1 / 6), "failure"),
        ("share", 1, 1, 1.0, "failure"),
    ]
    assert (result.order, result.window_seconds, result.sampled) == ("ordered", HOUR, None)


def test_limit_min_persons_and_excluded_names(app: Flask) -> None:
    load(app, JOURNEYS)
    assert [e.event for e in run(app, limit=1).events] == ["video", "help"]
    assert run(app, min_persons=3).events == []
    assert [e.event for e in run(app, min_persons=2).events] == ["video", "help", "share"]
    assert [e.event for e in run(app, exclude_events=["help", "nope"]).events] == [
        "video",
        "share",
    ]
    # A longer window: d's video (11:00) and faq (11:30) count, a's after-conversion events
    # still do not; f's faq at the entry instant never does.
    wide = run(app, window_seconds=2 * HOUR)
    assert table(wide) == [
        ("video", 2, 1, pytest.approx((3 / 2) / (2 / 3)), "success"),
        ("help", 0, 2, pytest.approx(1 / 6), "failure"),
        ("faq", 0, 1, pytest.approx((1 / 2) / (4 / 3)), "failure"),
        ("share", 1, 1, 1.0, "failure"),
    ]


def test_later_than_date_to_and_the_chosen_attempt(app: Flask) -> None:
    load(
        app,
        [
            # Enters at the range's last hour; the video after date_to is still inside the window.
            ("a", "signup", "2026-03-01T23:30"),
            ("a", "video", "2026-03-02T00:10"),
            # Two attempts: the converting one (the second) is chosen; its interval starts there.
            ("b", "signup", "2026-03-01T08:00"),
            ("b", "help", "2026-03-01T08:30"),
            ("b", "signup", "2026-03-01T10:00"),
            ("b", "video", "2026-03-01T10:10"),
            ("b", "buy", "2026-03-01T10:20"),
            ("c", "signup", "2026-03-01T12:00"),
            ("c", "buy", "2026-03-01T12:05"),
        ],
    )
    result = run(app, date_to="2026-03-02")
    assert (result.success_total, result.failure_total) == (2, 1)
    # video: (2/2) / (2/1); help came before b's chosen entry.
    assert table(result) == [("video", 1, 1, 0.5, "failure")]
    # Excluding video between the steps drops a's only attempt and b's converting one: b is
    # dropped, with the first attempt's help (b's video is outside that attempt's hour).
    excluded = run(app, date_to="2026-03-02", exclusions=[FunnelExclusion("video", (), 0, 1)])
    assert (excluded.success_total, excluded.failure_total) == (1, 1)
    assert table(excluded) == [("help", 0, 1, 0.25, "failure")]  # (1/2) / (2/1)


def test_report_filters_apply_to_the_candidate_events(app: Flask) -> None:
    load(
        app,
        [
            ("a", "signup", "2026-03-01T10:00", {"plan": "pro"}),
            ("a", "video", "2026-03-01T10:10", {"plan": "pro"}),
            ("a", "help", "2026-03-01T10:11", {"plan": "free"}),
            ("a", "buy", "2026-03-01T10:20", {"plan": "pro"}),
            ("b", "signup", "2026-03-01T10:00", {"plan": "pro"}),
            ("b", "help", "2026-03-01T10:10", {"plan": "pro"}),
        ],
    )
    result = run(app, filters=[{"key": "plan", "op": "eq", "value": "pro"}])
    assert (result.success_total, result.failure_total) == (1, 1)
    assert table(result) == [
        ("video", 1, 0, 4.0, "success"),  # (2/1) / (1/2)
        ("help", 0, 1, 0.25, "failure"),  # a's help is not "pro": (1/2) / (2/1)
    ]


@pytest.mark.parametrize("order", ["strict", "any"])
def test_other_orders_use_their_own_chains(app: Flask, order: str) -> None:
    load(
        app,
        [
            ("a", "signup", "2026-03-01T10:00"),
            ("a", "buy", "2026-03-01T10:10"),
            ("a", "video", "2026-03-01T10:20"),
            ("a", "view", "2026-03-01T10:30"),
            ("b", "signup", "2026-03-01T10:00"),
            ("b", "help", "2026-03-01T10:10"),
            ("b", "view", "2026-03-01T10:20"),
            ("b", "buy", "2026-03-01T10:30"),
        ],
    )
    funnel_steps = [FunnelStep("signup"), FunnelStep("view"), FunnelStep("buy")]
    result = run(app, funnel_steps, order=order)
    if order == "strict":  # nobody converts: the help / buy in between break the chains
        assert (result.success_total, result.failure_total, result.events) == (0, 2, [])
        assert result.skewed
    else:  # both convert by 10:30: nothing to compare
        assert (result.success_total, result.failure_total, result.events) == (2, 0, [])
        assert result.skewed


def test_one_outcome_only_is_skewed_and_empty(app: Flask) -> None:
    load(app, [("a", "signup", "2026-03-01T10:00"), ("a", "video", "2026-03-01T10:10")])
    result = run(app)
    assert (result.success_total, result.failure_total, result.skewed) == (0, 1, True)
    assert result.events == []
    assert run(app, date_from="2026-03-05").failure_total == 0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"min_persons": 0}, "min_persons"),
        ({"exclude_events": [""]}, "exclude_events"),
        ({"order": "sideways"}, "order"),
        ({"window_seconds": 0}, "window"),
    ],
)
def test_bad_arguments(app: Flask, options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        run(app, **options)
    assert error.value.field == field
    with pytest.raises(ValidationError) as error:
        run(app, [FunnelStep("signup")])
    assert error.value.field == "step"


def test_route_answers_the_report(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, JOURNEYS)
    client = app.test_client()
    answer = client.get(f"{URL}?{QUERY}&exclude_events=share&limit=5")
    assert answer.status_code == 200, answer.json
    assert answer.json["success_total"] == 3 and answer.json["failure_total"] == 3
    assert answer.json["skewed"] is False
    found = [(e["event"], e["success_count"], e["failure_count"]) for e in answer.json["events"]]
    assert found == [("video", 2, 0), ("help", 0, 2)]
    assert answer.json["events"][0]["odds_ratio"] == 6.0
    assert answer.json["events"][0]["correlation_type"] == "success"
    for bad, field in [
        ("limit=0", "limit"),
        ("min_persons=0", "min_persons"),
        ("breakdown=plan", "breakdown"),
        ("mode=trends", "mode"),
        ("order=sideways", "order"),
        ("exclude_events=", "exclude_events"),
    ]:
        response = client.get(f"{URL}?{QUERY}&{bad}")
        assert response.status_code == 400, (bad, response.json)
        assert field in response.json["error"]["message"], (bad, response.json)
    for bad, field in [("step=signup", "step"), ("step=signup&step=buy&window=0", "window")]:
        response = client.get(f"{URL}?date_from=2026-03-01&date_to=2026-03-08&{bad}")
        assert response.status_code == 400, (bad, response.json)
        assert field in response.json["error"]["message"], (bad, response.json)


@pytest.mark.parametrize(
    ("permission", "status"), [("metrics.view", 200), ("metrics.manage", 200), ("ingest", 403)]
)
def test_route_needs_metrics_view(app: Flask, permission: str, status: int) -> None:
    with app.app_context():
        key = create_api_key("s", permission)
    client = app.test_client()
    assert client.get(f"{URL}?scope_id=s&{QUERY}").status_code == 401
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(f"{URL}?scope_id=s&{QUERY}", headers=headers).status_code == status
    other = client.get(f"{URL}?scope_id=other&{QUERY}", headers=headers)
    assert other.status_code == 403


def test_openapi_documents_the_route(make_app: AppFactory) -> None:
    document = make_app(UMetrics()).test_client().get("/umetrics/api/openapi.json").json
    operation = document["paths"]["/umetrics/api/query/funnel/correlation"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"step", "window", "order", "exclude", "limit", "min_persons", "exclude_events"} <= names
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].rsplit("/", 1)[1] == "FunnelCorrelationResult"


# --- property test against a plain-Python reference ----------------------------------------

#: Dense enough that most examples have converted and dropped persons and candidate events.
correlation_rows = st.lists(
    st.tuples(
        st.integers(0, 7),  # distinct id
        st.sampled_from(("a", "a", "b", "c", "d", "e")),
        st.integers(0, 5),  # grid slot
        st.sampled_from([None, 0, 1]),  # property p (None: absent)
    ),
    min_size=30,
    max_size=50,
)


def ref_correlation(
    evs: list[Ev],
    steps: list[RefStep],
    date_from: int,
    date_to: int,
    window: int,
    order: str,
    limit: int,
    min_persons: int,
    exclusions: list[RefExclusion],
) -> tuple[int, int, list[tuple[str, int, int, float, str]]]:
    """``success_total, failure_total, events`` by the definition in docs/funnels-retention.md."""
    names = {s.event for s in steps}
    did: dict[str, list[int]] = {}
    totals = [0, 0]  # failure, success
    for person_events in _by_person(evs).values():
        attempts = ref_attempts(person_events, steps, date_from, date_to, window, order, exclusions)
        best = max((times for times, _ in attempts), key=len, default=None)  # first longest
        if best is None:
            continue
        won = len(best) == len(steps)
        totals[won] += 1
        stop = best[-1] if won else best[0] + window
        for name in {e.event for e in person_events if best[0] < e.ts < stop} - names:
            did.setdefault(name, [0, 0])[won] += 1
    failures, successes = totals
    if not successes or not failures:
        return successes, failures, []
    rated = []
    for name, (f, s) in did.items():
        if s + f >= min_persons:
            ratio = Fraction((s + 1) * (failures - f + 1), (successes - s + 1) * (f + 1))
            rated.append((ratio, name, s, f))
    up = sorted((r for r in rated if r[0] > 1), key=lambda r: (-r[0], r[1]))[:limit]
    down = sorted((r for r in rated if r[0] <= 1), key=lambda r: (r[0], r[1]))[:limit]
    picked = [
        (name, s, f, float(ratio), "success" if ratio > 1 else "failure")
        for ratio, name, s, f in up + down
    ]
    return successes, failures, picked


@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=correlation_rows, links=merges, data=st.data())
def test_correlation_matches_the_reference(
    app: Flask, rows: list[Any], links: list[tuple[int, int]], data: st.DataObject, order: str
) -> None:
    clear_events(app)
    load(
        app,
        [
            (f"d{d}", name, slot(n).isoformat(), {} if p is None else {"p": p})
            for d, name, n, p in rows
        ],
    )
    with app.app_context():
        for user, anon in links:
            identify(f"d{user}", anon_id=f"d{anon}")
    names = data.draw(st.sampled_from([["a", "b"], ["a", "b"], ["b", "a"], ["a", "c", "b"]]))
    funnel_steps = [FunnelStep(name) for name in names]
    window = data.draw(st.sampled_from([1, 2, 3, 6])) * GRID
    first = data.draw(st.integers(0, 2))
    last = data.draw(st.integers(first + 2, 6))
    limit = data.draw(st.integers(1, 3))
    min_persons = data.draw(st.integers(1, 2))
    # "e" anywhere from the entry to the last step (the one span every order allows) drops
    # the attempt; "e" stays a candidate event too.
    excluded = data.draw(st.booleans())
    exclusions = [FunnelExclusion("e", (), 0, len(names) - 1)] if excluded else []
    start, stop = slot(first), slot(last)
    with app.app_context():
        ctx = report_context(date_from=start, date_to=stop)
        result = funnel_correlation(
            ctx,
            funnel_steps,
            window_seconds=window,
            order=order,
            limit=limit,
            min_persons=min_persons,
            exclusions=exclusions,
        )
        evs = stored_events()
    expected = ref_correlation(
        evs,
        [RefStep(s.event) for s in funnel_steps],
        to_micros(start),
        to_micros(stop),
        window * 1_000_000,
        order,
        limit,
        min_persons,
        [RefExclusion(RefStep("e"), 0, len(names) - 1)] if excluded else [],
    )
    target(float(len(expected[2])))
    assert (result.success_total, result.failure_total, table(result)) == expected
