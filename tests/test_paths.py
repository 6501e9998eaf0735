"""Paths on hand-built sequences: collapsed repeats, start events, ties, merges, range edges."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_umetrics import UMetrics, identify
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.paths import PathsResult, paths

from .conftest import AppFactory, allow_all
from .events_data import at, load

pytestmark = pytest.mark.event_stores

Table = dict[int, list[tuple[str, str, float]]]

SEQUENCES = {
    "p1": ["home", "home", "pricing", "signup", "home"],  # home, pricing, signup, home
    "p2": ["home", "pricing", "pricing", "docs"],  # home, pricing, docs
    "p3": ["docs", "home", "pricing", "signup"],
    "p4": ["home"],  # no transition at all
}


def rows_of(sequences: dict[str, list[str]], day: str = "2026-03-01") -> list[tuple[str, ...]]:
    return [
        (person, event, f"{day}T10:{minute:02d}")
        for person, names in sequences.items()
        for minute, event in enumerate(names)
    ]


def table(result: PathsResult) -> Table:
    return {s.step: [(t.from_, t.to, t.persons) for t in s.transitions] for s in result.steps}


def run(app: Flask, **kwargs: object) -> Table:
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-02"))
        return table(paths(ctx, **kwargs))  # type: ignore[arg-type]


def test_paths_from_each_first_event(app: Flask) -> None:
    load(app, rows_of(SEQUENCES))
    assert run(app, steps=4) == {
        1: [("home", "pricing", 2), ("docs", "home", 1)],
        # Three transitions with one person each: ordered by (from, to).
        2: [("home", "pricing", 1), ("pricing", "docs", 1), ("pricing", "signup", 1)],
        3: [("pricing", "signup", 1), ("signup", "home", 1)],
        4: [],
    }
    assert run(app, steps=2, limit=2) == {
        1: [("home", "pricing", 2), ("docs", "home", 1)],
        2: [("home", "pricing", 1), ("pricing", "docs", 1)],
    }


def test_paths_from_the_first_occurrence_of_a_start_event(app: Flask) -> None:
    load(app, rows_of(SEQUENCES))
    assert run(app, start_event="pricing", steps=3) == {
        1: [("pricing", "signup", 2), ("pricing", "docs", 1)],
        2: [("signup", "home", 1)],
        3: [],
    }
    assert run(app, start_event="home", steps=2) == {
        1: [("home", "pricing", 3)],  # p3 starts at its second event; p4 goes nowhere
        2: [("pricing", "signup", 2), ("pricing", "docs", 1)],
    }
    assert run(app, start_event="nowhere", steps=1) == {1: []}


def test_ties_in_time_follow_insertion_and_the_range_is_half_open(app: Flask) -> None:
    load(
        app,
        [
            ("a", "pricing", "2026-02-28T23:59:59.999999"),  # before the range: ignored
            ("a", "home", "2026-03-01T00:00:00"),
            ("a", "pricing", "2026-03-01T09:00:00"),
            ("a", "signup", "2026-03-01T09:00:00"),  # same instant, stored after pricing
            ("a", "home", "2026-03-02T00:00:00"),  # at date_to: ignored
        ],
    )
    assert run(app, start_event="pricing", steps=2) == {1: [("pricing", "signup", 1)], 2: []}
    assert run(app, steps=2) == {1: [("home", "pricing", 1)], 2: [("pricing", "signup", 1)]}


def test_a_merge_after_the_events_joins_the_sequences(app: Flask) -> None:
    load(
        app,
        [
            ("anon", "home", "2026-03-01T10:00"),
            ("user", "pricing", "2026-03-01T10:05"),
            ("user", "signup", "2026-03-01T10:10"),
        ],
    )
    assert run(app, steps=2) == {1: [("pricing", "signup", 1)], 2: []}
    with app.app_context():
        identify("user", anon_id="anon")
    assert run(app, steps=2) == {1: [("home", "pricing", 1)], 2: [("pricing", "signup", 1)]}


@pytest.mark.parametrize(("kwargs", "field"), [({"steps": 0}, "steps"), ({"limit": 101}, "limit")])
def test_bad_arguments(app: Flask, kwargs: dict[str, int], field: str) -> None:
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-02"))
        with pytest.raises(ValidationError) as error:
            paths(ctx, **kwargs)  # type: ignore[arg-type]
        assert error.value.field == field


def test_paths_route(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, rows_of(SEQUENCES))
    client = app.test_client()
    span = "date_from=2026-03-01&date_to=2026-03-02"
    answer = client.get(f"/umetrics/api/query/paths?{span}&start_event=pricing&steps=2").json
    assert answer == {
        "start_event": "pricing",
        "steps": [
            {
                "step": 1,
                "transitions": [
                    {"from": "pricing", "to": "signup", "persons": 2},
                    {"from": "pricing", "to": "docs", "persons": 1},
                ],
            },
            {"step": 2, "transitions": [{"from": "signup", "to": "home", "persons": 1}]},
        ],
        "sampled": None,
        "end_event": None,
        "unit": "person",
    }
    for bad in ("steps=0", "steps=21", "limit=0", "limit=101"):
        assert client.get(f"/umetrics/api/query/paths?{bad}").status_code == 400, bad
