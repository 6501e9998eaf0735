"""Trends broken down by a person property or by a saved segment (in / out), and the persons
behind each point equal to its unique-persons count, on every event store."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from flask import Flask

from flask_umetrics import UMetrics, identify
from flask_umetrics.errors import ValidationError
from flask_umetrics.events.identity import set_person_properties
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.persons import persons_behind
from flask_umetrics.queries.segments import save_segment
from flask_umetrics.queries.trends import TrendsResult, trend_persons, trends

from .admin_html import table_cells
from .conftest import AppFactory, allow_all
from .events_data import at, load

pytestmark = pytest.mark.event_stores

DAYS = ("2026-03-01T00:00:00+00:00", "2026-03-02T00:00:00+00:00")
# a: plan pro (its events say plan free); b: free; c: pro, merged with the anonymous c-anon
# (whose event comes before the merge); d: no plan; e: team.
EVENTS = [
    ("a", "view", "2026-03-01T10:00", {"plan": "free"}),
    ("a", "view", "2026-03-01T11:00", {"plan": "free"}),
    ("a", "view", "2026-03-02T10:00", {"plan": "free"}),
    ("b", "view", "2026-03-01T12:00"),
    ("c-anon", "view", "2026-03-01T09:00"),
    ("c", "view", "2026-03-02T09:00"),
    ("d", "view", "2026-03-02T13:00"),
    ("e", "view", "2026-03-02T14:00"),
]


@pytest.fixture
def data(make_app: AppFactory) -> Flask:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension, SECRET_KEY="test-secret")
    load(app, EVENTS)
    with app.app_context():
        identify("c", anon_id="c-anon")
        set_person_properties("a", {"plan": "pro"})
        set_person_properties("b", {"plan": "free"})
        set_person_properties("c", {"plan": "pro"})
        set_person_properties("e", {"plan": "team"})
        save_segment("pro", filters=[{"key": "plan", "op": "eq", "value": "pro"}])
        save_segment("picked", distinct_ids=["c-anon", "b"])
    return app


def run(app: Flask, **options: Any) -> TrendsResult:
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-03"))
        return trends(ctx, event="view", **options)


def table(result: TrendsResult) -> list[tuple[str | None, list[Any]]]:
    return [(s.breakdown_value, [p.value for p in s.series]) for s in result.results]


def behind(app: Flask, time: str, **options: Any) -> list[str]:
    """Each person of a point, by their smallest distinct id."""
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-03"))
        listed = persons_behind(trend_persons(ctx, time=time, event="view", **options), limit=100)
    assert listed.total == len(listed.persons)
    return sorted(min(p.distinct_ids) for p in listed.persons)


def test_person_property_breakdown(data: Flask) -> None:
    person = {"breakdown": "plan", "breakdown_type": "person"}
    result = run(data, **person)
    assert result.breakdown_type == "person"
    # c's event before the merge counts under c's plan; d has no plan: the null group.
    assert table(result) == [("pro", [3, 2]), ("free", [1, 0]), ("team", [0, 1]), (None, [0, 1])]
    assert table(run(data, math="unique_persons", **person)) == [
        ("pro", [2, 2]),
        ("free", [1, 0]),
        ("team", [0, 1]),
        (None, [0, 1]),
    ]
    assert table(run(data, breakdown_limit=2, **person)) == [
        ("pro", [3, 2]),
        ("free", [1, 0]),
        ("$other", [0, 2]),
    ]
    # The event property of the same name still splits by the events' own values.
    event = run(data, breakdown="plan")
    assert event.breakdown_type == "event"
    assert table(event) == [(None, [2, 3]), ("free", [2, 1])]


def test_person_breakdown_persons_equal_the_counts(data: Flask) -> None:
    person = {"breakdown": "plan", "breakdown_type": "person"}
    for limit in (10, 2):
        counts = run(data, math="unique_persons", breakdown_limit=limit, **person)
        for series in counts.results:
            for day, point in zip(DAYS, series.series, strict=True):
                found = behind(
                    data,
                    day,
                    breakdown_value=series.breakdown_value,
                    breakdown_limit=limit,
                    **person,
                )
                assert len(found) == point.value, (limit, series.breakdown_value, day)
    assert behind(data, DAYS[0], breakdown_value="pro", **person) == ["a", "c"]
    assert behind(data, DAYS[1], breakdown_value=None, **person) == ["d"]
    assert behind(data, DAYS[1], breakdown_value="$other", breakdown_limit=2, **person) == [
        "d",
        "e",
    ]


def test_person_breakdown_other_persons_without_the_report(
    data: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``$other`` of a person-property breakdown ranks the persons' plans by views (pro 5,
    then free, team and none 1 each: code point, missing last) without the trends report."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the persons behind $other computed the whole trends report")

    monkeypatch.setattr("flask_umetrics.queries.trends.trends", refuse)
    person = {"breakdown": "plan", "breakdown_type": "person", "breakdown_value": "$other"}
    assert behind(data, DAYS[0], breakdown_limit=1, **person) == ["b"]
    assert behind(data, DAYS[1], breakdown_limit=1, **person) == ["d", "e"]
    assert behind(data, DAYS[0], breakdown_limit=2, **person) == []
    assert behind(data, DAYS[1], breakdown_limit=2, **person) == ["d", "e"]
    assert behind(data, DAYS[1], breakdown_limit=3, **person) == ["d"]


@pytest.mark.parametrize(
    ("segment", "total", "unique", "members"),
    [
        # dynamic: plan = pro (a and the merged c)
        ("pro", [("in", [3, 2]), ("out", [1, 2])], [("in", [2, 2]), ("out", [1, 2])], ["a", "c"]),
        # static: c-anon (so the merged c) and b
        (
            "picked",
            [("in", [2, 1]), ("out", [2, 3])],
            [("in", [2, 1]), ("out", [1, 3])],
            ["b", "c"],
        ),
    ],
)
def test_segment_breakdown(
    data: Flask, segment: str, total: list[Any], unique: list[Any], members: list[str]
) -> None:
    options = {"breakdown": segment, "breakdown_type": "segment"}
    result = run(data, **options)
    assert result.breakdown_type == "segment"
    assert table(result) == total
    assert table(run(data, breakdown_limit=1, **options)) == total  # always the two series
    assert table(run(data, math="unique_persons", **options)) == unique
    for group, series in unique:
        for day, count in zip(DAYS, series, strict=True):
            found = behind(data, day, breakdown_value=group, **options)
            assert len(found) == count, (group, day)
    assert behind(data, DAYS[0], breakdown_value="in", **options) == members


def test_segment_breakdown_of_an_empty_range_has_both_series(data: Flask) -> None:
    with data.app_context():
        ctx = report_context(date_from=at("2026-04-01"), date_to=at("2026-04-02"))
        result = trends(ctx, breakdown="pro", breakdown_type="segment")
    assert table(result) == [("in", [0]), ("out", [0])]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"breakdown": "plan", "breakdown_type": "group"}, "breakdown_type"),
        ({"breakdown": "nope", "breakdown_type": "segment"}, "breakdown"),
    ],
)
def test_bad_options_name_the_field(data: Flask, options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        run(data, **options)
    assert error.value.field == field
    with pytest.raises(ValidationError) as error:
        behind(data, DAYS[0], **options)
    assert error.value.field == field


def test_routes(data: Flask) -> None:
    client = data.test_client()
    base = "/umetrics/api/query/trends?date_from=2026-03-01&date_to=2026-03-03&event=view"
    answer = client.get(f"{base}&breakdown=plan&breakdown_type=person&math=unique_persons")
    assert answer.status_code == 200, answer.json
    assert answer.json["breakdown_type"] == "person"
    assert [(s["breakdown_value"], s["series"][0]["value"]) for s in answer.json["results"]] == [
        ("pro", 2),
        ("free", 1),
        ("team", 0),
        (None, 0),
    ]
    answer = client.get(f"{base}&breakdown=picked&breakdown_type=segment&compare=previous")
    assert answer.status_code == 200, answer.json
    assert [s["breakdown_value"] for s in answer.json["results"]] == ["in", "out"]
    assert [s["breakdown_value"] for s in answer.json["previous"]["results"]] == ["in", "out"]
    people = client.get(
        f"{base.replace('/trends?', '/trends/persons?')}&breakdown=pro&breakdown_type=segment"
        "&breakdown_value=in&time=2026-03-01T00:00:00%2B00:00"
    )
    assert people.status_code == 200, people.json
    assert sorted(min(p["distinct_ids"]) for p in people.json["persons"]) == ["a", "c"]
    series = '[{"event":"view"},{"event":"view","math":"unique_persons"}]'
    answer = client.get(f"{base}&series={series}&breakdown=pro&breakdown_type=segment")
    assert answer.status_code == 200, answer.json
    assert [(s["label"], s["breakdown_value"]) for s in answer.json["results"]] == [
        ("A", "in"),
        ("A", "out"),
        ("B", "in"),
        ("B", "out"),
    ]
    for bad, field in [
        ("breakdown=plan&breakdown_type=group", "breakdown_type"),
        ("breakdown=nope&breakdown_type=segment", "breakdown"),
    ]:
        response = client.get(f"{base}&{bad}")
        assert response.status_code == 400, (bad, response.json)
        assert field in response.json["error"]["message"], (bad, response.json)
    response = client.get(
        f"{base.replace('/trends?', '/trends/persons?')}&breakdown=pro&breakdown_type=segment"
        "&breakdown_value=maybe&time=2026-03-01T00:00:00%2B00:00"
    )
    assert response.status_code == 400, response.json
    assert "breakdown_value" in response.json["error"]["message"]


def test_events_page_breaks_down_by_segment(data: Flask) -> None:
    """The dashboard's Events page passes breakdown_type on, to the chart and to the persons
    behind each point."""
    client = data.test_client()
    query = (
        "date_from=2026-03-01&date_to=2026-03-03&event=view&breakdown=pro&breakdown_type=segment"
    )
    page = html.unescape(client.get(f"/umetrics/admin/events?{query}").text)
    assert '<option value="segment" selected>' in page
    links = json.loads(re.findall(r'"links": (\[\[.*?\]\])', page)[0])
    assert len(links) == 2 and all("breakdown_type=segment" in link for link in links[0])
    listed = table_cells(client.get(links[0][0]).text, "persons-behind")
    assert sorted(row[0] for row in listed if len(row) > 1) == ["a", "c"]  # "in" on March 1


def test_person_maths_with_person_and_segment_breakdowns(data: Flask) -> None:
    # first_time: each person's first view (c's through c-anon), under the person's plan.
    person = {"breakdown": "plan", "breakdown_type": "person"}
    assert table(run(data, math="first_time", **person)) == [
        ("pro", [2, 0]),
        ("free", [1, 0]),
        ("team", [0, 1]),
        (None, [0, 1]),
    ]
    # wau: b, seen on March 1, is still active out of the segment on March 2.
    segment = {"breakdown": "pro", "breakdown_type": "segment"}
    assert table(run(data, math="wau", **segment)) == [("in", [2, 2]), ("out", [1, 3])]
    assert table(run(data, math="per_person_avg", **segment)) == [
        ("in", [1.5, 1]),
        ("out", [1, 1]),
    ]
