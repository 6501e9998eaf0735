"""Funnel exclusion steps on hand-built events with known answers, and against the reference."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, assume, given, settings, target
from hypothesis import strategies as st

from flask_umetrics import UMetrics
from flask_umetrics.errors import ValidationError
from flask_umetrics.events.validation import to_micros
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.filters import PropertyFilter
from flask_umetrics.queries.funnel import (
    FunnelExclusion,
    FunnelStep,
    _validate_exclusions,
    funnel,
    funnel_persons,
)
from flask_umetrics.queries.persons import persons_behind

from .conftest import AppFactory, allow_all
from .events_data import load
from .reference_models import RefExclusion, ref_funnel, stored_events
from .test_funnel import GRID, _load_random, _ref_step, counts, merges, run, slot, steps

pytestmark = pytest.mark.event_stores

SIGNUP_VIEW_BUY = steps("signup", "view", "buy")


def _load_cancellations(app: Flask) -> None:
    load(
        app,
        [
            # a: cancels between signup and view
            ("a", "signup", "2026-03-01T10:00"),
            ("a", "cancel", "2026-03-01T10:05"),
            ("a", "view", "2026-03-01T10:10"),
            ("a", "buy", "2026-03-01T10:20"),
            # b: cancels between view and buy
            ("b", "signup", "2026-03-01T10:00"),
            ("b", "view", "2026-03-01T10:10"),
            ("b", "cancel", "2026-03-01T10:15"),
            ("b", "buy", "2026-03-01T10:20"),
            # c: cancels after the last step: never excluded
            ("c", "signup", "2026-03-01T10:00"),
            ("c", "view", "2026-03-01T10:10"),
            ("c", "buy", "2026-03-01T10:20"),
            ("c", "cancel", "2026-03-01T10:30"),
            # d: never buys, cancels after the view (inside the window)
            ("d", "signup", "2026-03-01T10:00"),
            ("d", "view", "2026-03-01T10:10"),
            ("d", "cancel", "2026-03-01T10:30"),
            # e: cancels right after signing up, never views
            ("e", "signup", "2026-03-01T10:00"),
            ("e", "cancel", "2026-03-01T10:05"),
            # f: a cancelled attempt, then a clean one
            ("f", "signup", "2026-03-01T10:00"),
            ("f", "cancel", "2026-03-01T10:01"),
            ("f", "signup", "2026-03-01T11:00"),
            ("f", "view", "2026-03-01T11:10"),
            # g: cancels exactly at the steps' times: the interval is open
            ("g", "signup", "2026-03-01T10:00"),
            ("g", "cancel", "2026-03-01T10:00"),
            ("g", "view", "2026-03-01T10:10"),
            ("g", "cancel", "2026-03-01T10:10"),
        ],
    )


@pytest.mark.parametrize(
    ("between", "expected"),
    [
        (None, [7, 6, 3]),
        ((0, 1), [5, 5, 2]),  # a and e dropped; f counts by its second attempt
        ((1, 2), [5, 4, 2]),  # b and d dropped
        ((0, 2), [2, 2, 1]),  # a, b, d, e and g (its 10:10 cancel) dropped
    ],
)
def test_exclusion_between_steps(
    app: Flask, between: tuple[int, int] | None, expected: list[int]
) -> None:
    _load_cancellations(app)
    exclusions = [] if between is None else [FunnelExclusion("cancel", (), *between)]
    result = run(app, SIGNUP_VIEW_BUY, exclusions=exclusions)
    assert counts(result) == expected
    assert result.exclusions == (exclusions or None)


def test_exclusion_until_the_window_ends(app: Flask) -> None:
    load(
        app,
        [
            ("a", "signup", "2026-03-01T10:00:00"),
            ("a", "cancel", "2026-03-01T11:00:00"),  # the window's last instant: dropped
            ("b", "signup", "2026-03-01T10:00:00"),
            ("b", "cancel", "2026-03-01T11:00:00.000001"),  # after the window: kept
            ("c", "signup", "2026-03-01T10:00:00"),
            ("c", "view", "2026-03-01T10:30:00"),
            ("c", "cancel", "2026-03-01T10:40:00"),  # after the span it guards: kept
        ],
    )
    exclusions = [FunnelExclusion("cancel", (), 0, 1)]
    result = run(app, steps("signup", "view"), window_seconds=3600, exclusions=exclusions)
    assert counts(result) == [2, 1]


@pytest.mark.parametrize("order", ["strict", "any"])
def test_exclusion_in_strict_and_any_order(app: Flask, order: str) -> None:
    load(
        app,
        [
            ("a", "signup", "2026-03-01T10:00"),
            ("a", "view", "2026-03-01T10:10"),
            ("a", "buy", "2026-03-01T10:20"),
            ("b", "signup", "2026-03-01T10:00"),
            ("b", "view", "2026-03-01T10:10"),
            ("b", "cancel", "2026-03-01T10:15"),  # strict: also breaks the chain
            ("b", "buy", "2026-03-01T10:20"),
            ("c", "signup", "2026-03-01T10:00"),
            ("c", "cancel", "2026-03-01T10:05", {"why": "price"}),
        ],
    )
    plain = run(app, SIGNUP_VIEW_BUY, order=order)
    assert counts(plain) == ([3, 2, 1] if order == "strict" else [3, 2, 2])
    everything = [FunnelExclusion("cancel", (), 0, 2)]
    assert counts(run(app, SIGNUP_VIEW_BUY, order=order, exclusions=everything)) == [1, 1, 1]
    priced = [FunnelExclusion("cancel", (PropertyFilter(key="why", value="price"),), 0, 2)]
    expected = [2, 2, 1] if order == "strict" else [2, 2, 2]
    assert counts(run(app, SIGNUP_VIEW_BUY, order=order, exclusions=priced)) == expected


@pytest.mark.parametrize(
    ("exclusion", "order"),
    [
        (FunnelExclusion("x", (), 1, 1), "ordered"),
        (FunnelExclusion("x", (), 2, 1), "ordered"),
        (FunnelExclusion("x", (), 0, 3), "ordered"),
        (FunnelExclusion("x", (), -1, 1), "ordered"),
        (FunnelExclusion("", (), 0, 1), "ordered"),
        (FunnelExclusion("view", (), 0, 1), "ordered"),  # would exclude step 2's own events
        (FunnelExclusion("x", (), 0, 1), "any"),  # any order: the whole funnel only
    ],
)
def test_bad_exclusions(app: Flask, exclusion: FunnelExclusion, order: str) -> None:
    with pytest.raises(ValidationError) as error:
        run(app, SIGNUP_VIEW_BUY, order=order, exclusions=[exclusion])
    assert error.value.field == "exclude"


def test_exclude_parameter_on_the_route(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    _load_cancellations(app)
    client = app.test_client()
    base = "/umetrics/api/query/funnel?date_from=2026-03-01&date_to=2026-03-02"
    base += "&step=signup&step=view&step=buy"
    for between, expected in [((0, 1), [5, 5, 2]), ((1, 2), [5, 4, 2])]:
        exclude = [{"event": "cancel", "from_step": between[0], "to_step": between[1]}]
        answer = client.get(f"{base}&{urlencode({'exclude': json.dumps(exclude)})}")
        assert answer.status_code == 200, answer.json
        assert [s["count"] for s in answer.json["steps"]] == expected
        assert answer.json["exclusions"] == [{**exclude[0], "filters": []}]
    for bad in [
        "{nope",
        json.dumps([{"event": "cancel", "from_step": 1, "to_step": 1}]),
        json.dumps([{"event": "cancel", "from_step": 0, "to_step": 3}]),
        json.dumps([{"event": "cancel", "from_step": 0, "to_step": 1, "color": "red"}]),
        json.dumps([{"event": "cancel", "from_step": 0}]),
        json.dumps([{"event": "view", "from_step": 0, "to_step": 1}]),
    ]:
        response = client.get(f"{base}&{urlencode({'exclude': bad})}")
        assert response.status_code == 400, (bad, response.json)
        assert "exclude" in response.json["error"]["message"], (bad, response.json)
    partial = json.dumps([{"event": "cancel", "from_step": 0, "to_step": 1}])
    response = client.get(f"{base}&order=any&{urlencode({'exclude': partial})}")
    assert response.status_code == 400 and "exclude" in response.json["error"]["message"]


# --- property test against the reference model --------------------------------------------

rows_with_x = st.lists(
    st.tuples(
        st.integers(0, 3),  # distinct id
        st.sampled_from(("a", "b", "c", "x")),
        st.integers(0, 6),  # grid slot
        st.sampled_from([None, 0, 1]),  # property p (None: absent)
        st.booleans(),  # active
    ),
    min_size=6,
    max_size=24,
)


@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_with_x, links=merges, data=st.data())
def test_exclusions_match_the_reference(
    app: Flask, rows: list[Any], links: list[tuple[int, int]], data: st.DataObject, order: str
) -> None:
    names = data.draw(st.lists(st.sampled_from(("a", "b", "c")), min_size=2, max_size=4))
    shared = {name: data.draw(st.sampled_from([None, None, 0, 1])) for name in ("a", "b", "c")}
    funnel_steps = [
        FunnelStep(n, () if shared[n] is None else (PropertyFilter(key="p", value=shared[n]),))
        for n in names
    ]
    last = len(funnel_steps) - 1
    exclusions = []
    for _ in range(data.draw(st.integers(1, 2))):
        event = data.draw(st.sampled_from(("x", "x", "a", "b", "c")))
        wanted = data.draw(st.sampled_from([None, 0, 1]))
        low = 0 if order == "any" else data.draw(st.integers(0, last - 1))
        high = last if order == "any" else data.draw(st.integers(low + 1, last))
        filters = () if wanted is None else (PropertyFilter(key="p", value=wanted),)
        exclusions.append(FunnelExclusion(event, filters, low, high))
    window = data.draw(st.sampled_from([1, 2, 3, 20])) * GRID
    first = data.draw(st.integers(0, 3))
    stop = data.draw(st.integers(first + 1, 7))
    try:
        _validate_exclusions(funnel_steps, exclusions, order)
    except ValidationError:
        assume(False)
    _load_random(app, rows, links)
    with app.app_context():
        ctx = report_context(date_from=slot(first), date_to=slot(stop))
        result = funnel(
            ctx, funnel_steps, window_seconds=window, order=order, exclusions=exclusions
        )
        expected = ref_funnel(
            stored_events(),
            [_ref_step(s) for s in funnel_steps],
            to_micros(slot(first)),
            to_micros(slot(stop)),
            window * 1_000_000,
            order,
            exclusions=[
                RefExclusion(_ref_step(FunnelStep(x.event, x.filters)), x.from_step, x.to_step)
                for x in exclusions
            ],
        )
    target(float(sum(expected.counts[1:])))
    assert counts(result) == expected.counts
    assert [s.median_seconds_from_previous for s in result.steps] == expected.medians
    # The persons behind each step are exactly as many as the step counts.
    with app.app_context():
        behind = [
            persons_behind(
                funnel_persons(
                    ctx,
                    funnel_steps,
                    funnel_step=n,
                    window_seconds=window,
                    order=order,
                    exclusions=exclusions,
                ),
                limit=200,
            ).total
            for n in range(1, len(funnel_steps) + 1)
        ]
    assert behind == expected.counts
