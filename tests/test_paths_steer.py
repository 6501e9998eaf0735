"""Paths you can steer: end events, per-session paths, pathnames, exclusions, cleaning rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_umetrics import UMetrics
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.path_cleaning import CleaningRule, translate
from flask_umetrics.queries.paths import paths

from .conftest import AppFactory, allow_all
from .events_data import at, clear_events, load
from .test_paths import SEQUENCES, Table, rows_of, table

pytestmark = pytest.mark.event_stores


def run(app: Flask, **kwargs: Any) -> Table:
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-02"))
        return table(paths(ctx, **kwargs))


def test_paths_leading_to_an_end_event_count_back(app: Flask) -> None:
    # p1: home, pricing, signup, home; p2: home, pricing, docs; p3: docs, home, pricing, signup
    load(app, rows_of(SEQUENCES))
    assert run(app, end_event="signup", steps=3) == {
        1: [("pricing", "signup", 2)],  # the transition into the end event
        2: [("home", "pricing", 2)],
        3: [("docs", "home", 1)],  # p1 has nothing before home
    }
    # The first occurrence: p1's path to home is empty, p3's is docs -> home.
    assert run(app, end_event="home", steps=2) == {1: [("docs", "home", 1)], 2: []}
    assert run(app, end_event="nowhere", steps=1) == {1: []}


PAGES = [
    # (person, event, minute, pathname)
    ("a", "$pageview", 0, "/"),
    ("a", "$pageview", 1, "/notes/12"),
    ("a", "$pageview", 2, "/notes/345"),  # cleaned: a repeat of /notes/:id, collapsed
    ("a", "saved", 3, None),
    ("a", "$pageview", 4, "/pricing"),
    ("b", "$pageview", 0, "/"),
    ("b", "$autocapture", 1, None),
    ("b", "$pageview", 2, "/notes/7"),
    ("b", "$pageview", 3, None),  # no pathname: shown by its name
    ("c", "$pageview", 0, "/pricing"),
    ("c", "$pageview", 1, "/Notes/9"),  # case matters
]


def page_rows() -> list[tuple[Any, ...]]:
    return [
        (who, event, f"2026-03-01T10:{minute:02d}", {"$pathname": path} if path else {})
        for who, event, minute, path in PAGES
    ]


def test_pathnames_cleaning_and_exclusions(app: Flask) -> None:
    load(app, page_rows())
    assert run(app, steps=1, limit=3) == {
        1: [("$pageview", "$autocapture", 1), ("$pageview", "saved", 1)],
    }
    assert run(app, steps=3, pathnames=True) == {
        1: [("/", "$autocapture", 1), ("/", "/notes/12", 1), ("/pricing", "/Notes/9", 1)],
        2: [("$autocapture", "/notes/7", 1), ("/notes/12", "/notes/345", 1)],
        3: [("/notes/345", "saved", 1), ("/notes/7", "$pageview", 1)],
    }
    notes = CleaningRule("/notes/\\d+", "/notes/:id")
    assert run(app, steps=3, pathnames=True, cleaning=[notes], exclude=["$autocapture"]) == {
        1: [("/", "/notes/:id", 2), ("/pricing", "/Notes/9", 1)],
        2: [("/notes/:id", "$pageview", 1), ("/notes/:id", "saved", 1)],
        3: [("saved", "/pricing", 1)],
    }
    # Exclusions match a step as shown, after cleaning; start events too.
    assert run(
        app, steps=2, pathnames=True, cleaning=[notes], exclude=["/notes/:id"], start_event="/"
    ) == {
        1: [("/", "$autocapture", 1), ("/", "saved", 1)],
        2: [("$autocapture", "$pageview", 1), ("saved", "/pricing", 1)],
    }
    assert run(app, steps=1, pathnames=True, cleaning=[notes], end_event="/pricing") == {
        1: [("saved", "/pricing", 1)]
    }


def test_cleaning_rules_apply_in_order_and_replace_every_match(app: Flask) -> None:
    load(
        app,
        [
            ("a", "$pageview", "2026-03-01T10:00", {"$pathname": "/a1/b22/c333"}),
            ("a", "$pageview", "2026-03-01T10:01", {"$pathname": "/x.y-z/ok"}),
            ("a", "$pageview", "2026-03-01T10:02", {"$pathname": "/aab"}),
        ],
    )
    rules = [
        CleaningRule("[0-9]+", "#"),
        CleaningRule("^/[a-z]#", "/L#"),
        CleaningRule("[^/a-zA-Z#]", "_"),
        CleaningRule("a*ab?", "<A>"),  # leftmost-longest = leftmost-first here
        CleaningRule("\\w{2,}$", "!"),
    ]
    assert run(app, steps=2, pathnames=True, cleaning=rules) == {
        1: [("/L#/b#/c#", "/x_y_z/!", 1)],
        2: [("/x_y_z/!", "/<A>", 1)],
    }


SESSIONS = [
    # person b: two timeout sessions (a gap of 2 hours), then a client session in between
    ("b", "home", "2026-03-01T08:00", None, None, None),
    ("b", "pricing", "2026-03-01T08:10", None, None, None),
    ("b", "hidden", "2026-03-01T08:15", None, False, None),  # inactive: in no session
    ("b", "home", "2026-03-01T10:20", None, None, None),
    ("b", "docs", "2026-03-01T10:30", None, None, None),
    ("b", "home", "2026-03-01T09:00", None, None, "s1"),
    ("b", "signup", "2026-03-01T09:05", None, None, "s1"),
    ("c", "home", "2026-03-01T08:00", None, None, None),
    ("c", "pricing", "2026-03-01T08:30", None, None, None),  # exactly the timeout: same session
]


def test_per_session_paths_follow_the_session_rule(app: Flask) -> None:
    load(app, SESSIONS)
    assert run(app, steps=2, unit="session") == {
        1: [("home", "pricing", 2), ("home", "docs", 1), ("home", "signup", 1)],
        2: [],
    }
    assert run(app, steps=2) == {  # per person, inactive events included
        1: [("home", "pricing", 2)],
        2: [("pricing", "hidden", 1)],
    }
    assert run(app, end_event="pricing", steps=1, unit="session") == {1: [("home", "pricing", 2)]}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start_event": "a", "end_event": "b"}, "end_event"),
        ({"unit": "visit"}, "unit"),
        ({"exclude": [""]}, "exclude"),
        ({"cleaning": [CleaningRule("(a|b)", "x")]}, "cleaning"),
        ({"cleaning": [CleaningRule("a", "\\1")]}, "cleaning"),
    ],
)
def test_bad_arguments(app: Flask, kwargs: dict[str, Any], field: str) -> None:
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-02"))
        with pytest.raises(ValidationError) as error:
            paths(ctx, **kwargs)
        assert error.value.field == field


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "(a)",
        "a|b",
        "a*?",
        "a++",
        "x{2",
        "\\b",
        "\\1",
        "a^",
        "$a",
        "[[:alpha:]]",
        "[]",
        "a*",
        "^",
        ".{101}",
        "(?i)a",
        "}",
        "[\\D]",
        "a\\",
    ],
)
def test_patterns_outside_the_common_subset_are_refused(pattern: str) -> None:
    with pytest.raises(ValidationError) as error:
        translate(pattern, "cleaning")
    assert error.value.field == "cleaning"


def test_patterns_are_rewritten_to_explicit_ascii_classes() -> None:
    assert translate("/notes/\\d+", "f") == "/notes/[0-9]+"
    assert translate(".\\W[\\w-]", "f") == "[^\\n][^0-9A-Za-z_][0-9A-Za-z_-]"
    assert translate("\\.\\{x\\}", "f") == "\\.\\{x\\}"


def test_paths_route_options(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, page_rows())
    client = app.test_client()
    span = "date_from=2026-03-01&date_to=2026-03-02"
    cleaning = json.dumps([{"pattern": "/notes/\\d+", "replacement": "/notes/:id"}])
    answer = client.get(
        "/umetrics/api/query/paths",
        query_string={
            "date_from": "2026-03-01",
            "date_to": "2026-03-02",
            "pathnames": "true",
            "end_event": "/notes/:id",
            "steps": "1",
            "exclude": "$autocapture",
            "unit": "person",
            "cleaning": cleaning,
        },
    ).json
    assert answer["end_event"] == "/notes/:id"
    assert answer["steps"] == [
        {"step": 1, "transitions": [{"from": "/", "to": "/notes/:id", "persons": 2}]}
    ]
    for bad, field in [
        ("cleaning=" + json.dumps([{"pattern": "(x)", "replacement": "y"}]), "cleaning"),
        ("cleaning=nope", "cleaning"),
        ("unit=visit", "unit"),
        ("start_event=a&end_event=b", "end_event"),
    ]:
        response = client.get(f"/umetrics/api/query/paths?{span}&{bad}")
        assert response.status_code == 400, bad
        assert field in json.dumps(response.json), (bad, response.json)


def reference(
    rows: list[tuple[str, str, int, str | None, bool]],
    *,
    unit: str,
    start_event: str | None,
    end_event: str | None,
    exclude: list[str],
    steps: int,
    limit: int,
    timeout_minutes: int,
) -> Table:
    """Paths in Python: rows ``(person, event, minute, session_id, active)`` in stored order."""
    units: dict[Any, list[tuple[int, int, str]]] = {}
    ordered = sorted(enumerate(rows), key=lambda item: (item[1][2], item[0]))
    last_loose: dict[str, int] = {}
    number: dict[str, int] = {}
    for order, (person, event, minute, session_id, active) in ordered:
        key: Any = person
        if unit == "session":
            if not active:
                continue
            if session_id is not None:
                key = (person, session_id)
            else:
                gap = minute - last_loose.get(person, minute)
                if person not in last_loose or gap > timeout_minutes:
                    number[person] = number.get(person, 0) + 1
                last_loose[person] = minute
                key = (person, None, number[person])
        units.setdefault(key, []).append((minute, order, event))
    counts: dict[tuple[int, str, str], int] = {}
    for items in units.values():
        path: list[str] = []
        for _, _, event in sorted(items):
            if event not in exclude and (not path or path[-1] != event):
                path.append(event)
        pairs: list[tuple[int, str, str]] = []
        if end_event is not None:
            if end_event in path:
                end = path.index(end_event)
                pairs = [
                    (k, path[end - k], path[end - k + 1]) for k in range(1, min(steps, end) + 1)
                ]
        else:
            begin = (
                0
                if start_event is None
                else (path.index(start_event) if start_event in path else -1)
            )
            if begin >= 0:
                pairs = [
                    (k, path[begin + k - 1], path[begin + k])
                    for k in range(1, steps + 1)
                    if begin + k < len(path)
                ]
        for pair in pairs:
            counts[pair] = counts.get(pair, 0) + 1
    result: Table = {k: [] for k in range(1, steps + 1)}
    for (k, src, dst), n in sorted(
        counts.items(), key=lambda item: (item[0][0], -item[1], item[0][1], item[0][2])
    ):
        if len(result[k]) < limit:
            result[k].append((src, dst, n))
    return result


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["p", "q", "r"]),
            st.sampled_from(["a", "b", "c", "x"]),
            st.integers(0, 180),
            st.sampled_from([None, None, "s1", "s2"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=20,
    ),
    unit=st.sampled_from(["person", "session"]),
    anchor=st.sampled_from([None, ("start", "a"), ("end", "b")]),
    exclude=st.sampled_from([[], ["x"], ["c", "x"]]),
    steps=st.integers(1, 4),
    limit=st.integers(1, 3),
)
def test_paths_match_the_reference(
    app: Flask,
    rows: list[tuple[str, str, int, str | None, bool]],
    unit: str,
    anchor: tuple[str, str] | None,
    exclude: list[str],
    steps: int,
    limit: int,
) -> None:
    clear_events(app)
    load(
        app,
        [
            (person, event, f"2026-03-01T{minute // 60:02d}:{minute % 60:02d}", None, active, sid)
            for person, event, minute, sid, active in rows
        ],
    )
    options: dict[str, Any] = {"start_event": None, "end_event": None}
    if anchor is not None:
        options[f"{anchor[0]}_event"] = anchor[1]
    expected = reference(
        rows, unit=unit, exclude=exclude, steps=steps, limit=limit, timeout_minutes=30, **options
    )
    assert run(app, unit=unit, exclude=exclude, steps=steps, limit=limit, **options) == expected
