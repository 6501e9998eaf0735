"""Several trend series in one report and a formula over them, on hand-built events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from flask_umetrics import UMetrics
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.formula import parse_formula
from flask_umetrics.queries.trends import TrendsResult
from flask_umetrics.queries.trends_series import SeriesSpec, trends_series

from .conftest import AppFactory, allow_all
from .events_data import at, load

pytestmark = pytest.mark.event_stores

EVENTS = [
    ("a", "view", "2026-03-01T10:00"),
    ("a", "view", "2026-03-01T11:00"),
    ("b", "view", "2026-03-01T10:00"),
    ("c", "view", "2026-03-01T10:00"),
    ("d", "view", "2026-03-01T10:00"),
    ("a", "signup", "2026-03-01T12:00", {"plan": "pro"}),
    ("a", "view", "2026-03-02T10:00"),
    ("b", "view", "2026-03-02T10:00"),
    ("b", "signup", "2026-03-02T12:00", {"plan": "free"}),
    ("c", "signup", "2026-03-02T12:00", {"plan": "pro"}),
]
SIGNUPS_PER_VIEWER = [SeriesSpec("signup"), SeriesSpec("view", "unique_persons")]


def run(app: Flask, series: list[SeriesSpec], **options: Any) -> TrendsResult:
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-04"))
        return trends_series(ctx, series, **options)


def table(result: TrendsResult) -> list[tuple[Any, ...]]:
    return [(r.label, r.breakdown_value, [p.value for p in r.series]) for r in result.results]


def test_series_are_lettered(app: Flask) -> None:
    load(app, EVENTS)
    result = run(app, SIGNUPS_PER_VIEWER)
    assert result.math == "series" and result.formula is None
    assert table(result) == [("A", None, [1, 2, 0]), ("B", None, [4, 2, 0])]
    assert result.results[0].total == 3 and result.results[1].total is None


def test_formula(app: Flask) -> None:
    load(app, EVENTS)
    result = run(app, SIGNUPS_PER_VIEWER, formula="A / B * 100")
    assert result.math == "formula" and result.formula == "A / B * 100"
    assert table(result) == [("A / B * 100", None, [25.0, 100.0, 0.0])]  # x / 0 is 0
    assert table(run(app, SIGNUPS_PER_VIEWER, formula="A/B*100", cumulative=True)) == [
        ("A/B*100", None, [25.0, 125.0, 125.0])
    ]
    assert table(run(app, SIGNUPS_PER_VIEWER, formula="-(A - B) + 0.5")) == [
        ("-(A - B) + 0.5", None, [3.5, 0.5, 0.5])
    ]
    split = run(
        app,
        [SeriesSpec("signup"), SeriesSpec("signup", "unique_persons")],
        formula="A/B",
        breakdown="plan",
    )
    assert table(split) == [("A/B", "pro", [1.0, 1.0, 0.0]), ("A/B", "free", [0.0, 1.0, 0.0])]
    compared = run(app, SIGNUPS_PER_VIEWER, formula="A+B", compare="previous")
    assert compared.previous is not None
    assert table(compared.previous) == [("A+B", None, [0.0, 0.0, 0.0])]


@pytest.mark.parametrize(
    "formula",
    ["A/C", "__import__('os')", "A**2", "", "A.real", "[A]", "A if B else 1", "True + A", "a"],
)
def test_only_arithmetic_over_the_letters(formula: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_formula(formula, "AB")
    assert error.value.field == "formula"


def test_formula_evaluation() -> None:
    evaluate = parse_formula("(A + 2) * B / 4 - -1", "AB")
    assert evaluate({"A": 2.0, "B": 3.0}) == 4.0
    assert parse_formula("A / (B - B)", "AB")({"A": 1.0, "B": 5.0}) == 0.0


def test_series_route(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, EVENTS)
    client = app.test_client()
    base = "/umetrics/api/query/trends"
    span = {"date_from": "2026-03-01", "date_to": "2026-03-04"}
    series = json.dumps([{"event": "signup"}, {"event": "view", "math": "unique_persons"}])
    answer = client.get(base, query_string={**span, "series": series, "formula": "A/B*100"})
    assert answer.status_code == 200, answer.json
    assert answer.json["math"] == "formula" and answer.json["formula"] == "A/B*100"
    assert [p["value"] for p in answer.json["results"][0]["series"]] == [25.0, 100.0, 0.0]
    lettered = client.get(base, query_string={**span, "series": series}).json
    assert [r["label"] for r in lettered["results"]] == ["A", "B"]
    for params, field in [
        ({"series": "[{"}, "series"),
        ({"series": json.dumps([{"math": "p42"}])}, "series"),
        ({"series": json.dumps([{"event": "x", "color": 1}])}, "series"),
        ({"series": series, "formula": "A/Z"}, "formula"),
        ({"formula": "A"}, "series"),
    ]:
        response = client.get(base, query_string={**span, **params})
        assert response.status_code == 400, (params, response.json)
        assert field in response.json["error"]["message"], (params, response.json)
