"""People search: by any merged distinct id, by a person property, with totals and paging."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_umetrics import UMetrics, identify, set_person_properties
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.people import PersonSearchResult, search_persons

from .conftest import AppFactory, allow_all
from .events_data import load

pytestmark = pytest.mark.event_stores

ROWS = [
    ("anon-1", "$pageview", "2026-03-01T10:00"),  # becomes u1's: u1 is first seen here
    ("u1", "signed_up", "2026-03-02T10:00"),
    ("u1", "note_created", "2026-03-03T10:00"),
    ("u2", "signed_up", "2026-03-04T10:00"),
    ("u3", "signed_up", "2026-03-05T10:00"),
    ("u3", "plan_upgraded", "2026-03-05T11:00"),
    ("anon-9", "$pageview", "2026-03-06T10:00"),
]


def seed(app: Flask) -> None:
    load(app, ROWS)
    with app.app_context():
        identify("u1", anon_id="anon-1", traits={"plan": "pro", "seats": 5})
        identify("u2", traits={"plan": "free", "seats": 1})
        identify("u3", traits={"plan": "pro", "beta": True})


def search(app: Flask, **args: object) -> PersonSearchResult:
    with app.app_context():
        return search_persons(**args)  # type: ignore[arg-type]


def test_search_by_any_distinct_id_finds_the_merged_person(app: Flask) -> None:
    seed(app)
    for known in ("u1", "anon-1"):
        result = search(app, distinct_id=known)
        assert result.total == 1
        (person,) = result.persons
        assert person.distinct_ids == ["anon-1", "u1"]
        assert person.properties == {"plan": "pro", "seats": 5}
        assert person.created_at.startswith("2026-03-01T10:00")
        assert person.last_seen is not None and person.last_seen.startswith("2026-03-03T10:00")
        assert (person.events, person.is_identified) == (3, True)
    # exact match only: no prefix or case-insensitive matches
    assert search(app, distinct_id="u").total == 0
    assert search(app, distinct_id="U1").total == 0


def test_search_by_property_compares_the_value_as_text(app: Flask) -> None:
    seed(app)
    pro = search(app, property="plan", value="pro")
    assert pro.total == 2
    assert [p.distinct_ids for p in pro.persons] == [["u3"], ["anon-1", "u1"]]  # newest first
    assert [p.events for p in pro.persons] == [2, 3]
    assert search(app, property="seats", value="5").total == 1  # a JSON number
    assert search(app, property="beta", value="true").total == 1  # a JSON boolean
    assert search(app, property="plan", value="Pro").total == 0
    both = search(app, property="plan", value="pro", distinct_id="u2")
    assert both.total == 0 and both.persons == []


def test_everybody_newest_first_in_pages(app: Flask) -> None:
    seed(app)
    everyone = search(app)
    assert everyone.total == 4
    assert [p.distinct_ids[0] for p in everyone.persons] == ["anon-9", "u3", "u2", "anon-1"]
    second = search(app, limit=2, offset=2)
    assert (second.total, second.offset, second.limit) == (4, 2, 2)
    assert [p.distinct_ids[0] for p in second.persons] == ["u2", "anon-1"]
    assert search(app, limit=2, offset=4).persons == []


def test_a_property_set_later_is_found(app: Flask) -> None:
    seed(app)
    with app.app_context():
        set_person_properties("u2", set={"plan": "pro"})
    assert search(app, property="plan", value="pro").total == 3


def test_scopes_are_separate(app: Flask) -> None:
    seed(app)
    load(app, [("u1", "x", "2026-03-01T00:00")], scope_id="other")
    assert search(app, scope_id="other").total == 1
    assert search(app, scope_id="other", property="plan", value="pro").total == 0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 1_000_001}, "offset"),
        ({"property": "plan"}, "value"),
        ({"value": "pro"}, "property"),
        ({"property": 'a"b', "value": "x"}, "property"),
        ({"distinct_id": ""}, "distinct_id"),
    ],
)
def test_bad_arguments_name_the_field(app: Flask, args: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        search(app, **args)
    assert caught.value.field == field


def test_rest_route_answers_the_same(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    seed(app)
    client = app.test_client()
    answer = client.get("/umetrics/api/persons?property=plan&value=pro&limit=1").json
    assert answer["total"] == 2 and answer["limit"] == 1 and answer["offset"] == 0
    assert answer["persons"][0]["distinct_ids"] == ["u3"]
    assert answer["persons"][0]["events"] == 2
    by_id = client.get("/umetrics/api/persons?distinct_id=anon-1").json
    assert [p["distinct_ids"] for p in by_id["persons"]] == [["anon-1", "u1"]]
    bad = client.get("/umetrics/api/persons?value=pro")
    assert bad.status_code == 400 and "property" in bad.json["error"]["message"]
    assert client.get("/umetrics/api/persons?limit=0").status_code == 400
    # Found by the fuzz test: an offset past SQLite's integers was a 500.
    huge = client.get(f"/umetrics/api/persons?offset={2**64}")
    assert huge.status_code == 400 and huge.json["error"]["details"][0]["field"] == "offset"


def test_statements_with_another_property_key_are_not_served_from_the_cache(
    make_app: AppFactory,
) -> None:
    """The key is a parameter of the cached statement (it once stuck to the first key asked)."""
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, [("a", "e", "2026-03-01T10:00", {"x": "1", "y": "2"})])
    client = app.test_client()
    query = "/umetrics/api/query/top?event=e&date_from=2026-03-01&date_to=2026-03-02&property="
    assert client.get(query + "x").json["items"] == [{"key": "1", "count": 1}]
    assert client.get(query + "y").json["items"] == [{"key": "2", "count": 1}]
