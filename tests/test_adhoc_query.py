"""The safe ad-hoc query: exact answers, refusals naming the field, and no way to inject SQL."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select

from flask_umetrics import UMetrics, create_api_key, identify, set_person_properties
from flask_umetrics.db.tables import events
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.adhoc import QuerySpec, run_query
from flask_umetrics.state import current_state

from .conftest import AppFactory, allow_all
from .events_data import at, load

pytestmark = pytest.mark.event_stores

RANGE = {"date_from": "2026-03-01", "date_to": "2026-03-09"}
ROWS = [
    ("anon1", "view", "2026-03-01T10:00", {"plan": "free", "amount": 5}),
    ("anon1", "buy", "2026-03-01T11:00", {"plan": "free", "amount": 10}),
    ("u1", "buy", "2026-03-02T09:00", {"plan": "pro", "amount": 20.5}),
    ("u2", "view", "2026-03-02T23:59:59.999999", {"plan": "pro", "we'ird key": "v"}),
    ("u2", "buy", "2026-03-03T00:00", {"plan": "pro", "amount": 7}),
    ("u1", "view", "2026-03-08T12:00", {"plan": "pro", "amount": "5"}),  # text, not a number
    ("u3", "view", "2026-02-28T23:59:59.999999", {"plan": "free"}),  # before the range
    ("u3", "view", "2026-03-09T00:00", {"plan": "free"}),  # date_to is exclusive
]


@pytest.fixture
def data_app(make_app: AppFactory) -> Flask:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    load(app, ROWS)
    with app.app_context():
        identify("u1", anon_id="anon1")  # after the events: the merge is retroactive
        set_person_properties("u1", {"country": "DE"})
        set_person_properties("u2", {"country": "FR"})
    return app


def query(app: Flask, **spec: Any) -> Any:
    response = app.test_client().post("/umetrics/api/query", json={**RANGE, **spec})
    assert response.status_code == 200, response.json
    return response.json


def rows(app: Flask, **spec: Any) -> list[list[Any]]:
    return query(app, **spec)["rows"]  # type: ignore[no-any-return]


def refused(app: Flask, body: Any) -> dict[str, Any]:
    response = app.test_client().post("/umetrics/api/query", json=body)
    assert response.status_code == 400, (body, response.json)
    return response.json["error"]  # type: ignore[no-any-return]


def event_count(app: Flask) -> int:
    with app.app_context(), current_state().engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(events)).scalar_one())


def test_counts_per_event_count_persons_after_the_merge(data_app: Flask) -> None:
    result = query(
        data_app,
        select=["event", "count()", "count_distinct(person_id)", "count_distinct(distinct_id)"],
        order_by=[{"field": "count()", "dir": "desc"}],
    )
    assert result["columns"] == [
        "event",
        "count()",
        "count_distinct(person_id)",
        "count_distinct(distinct_id)",
    ]
    # A tie on count() is broken by the other columns, ascending.
    assert result["rows"] == [["buy", 3, 2, 3], ["view", 3, 2, 3]]
    assert result["sql_params"] >= 3  # scope, range bounds: all bound, never inlined
    assert rows(data_app, select=["count()"]) == [[6]]


def test_calendar_buckets_are_iso_starts_in_the_zone(data_app: Flask) -> None:
    assert rows(data_app, select=["day", "count()"]) == [
        ["2026-03-01T00:00:00+00:00", 2],
        ["2026-03-02T00:00:00+00:00", 2],  # 23:59:59.999999 is still the 2nd
        ["2026-03-03T00:00:00+00:00", 1],
        ["2026-03-08T00:00:00+00:00", 1],
    ]
    assert rows(data_app, select=["week", "count()"]) == [
        ["2026-02-23T00:00:00+00:00", 2],  # Sunday 1 March is in the week of Monday 23 Feb
        ["2026-03-02T00:00:00+00:00", 4],
    ]
    assert rows(data_app, select=["month", "count_distinct(person_id)"]) == [
        ["2026-03-01T00:00:00+00:00", 2]
    ]


def test_calendar_buckets_follow_the_configured_zone(make_app: AppFactory) -> None:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension, UMETRICS_TIMEZONE="Europe/Berlin")
    load(app, [("a", "e", "2026-03-28T22:59:00"), ("a", "e", "2026-03-28T23:00:00")])
    assert rows(
        app,
        select=["day", "count()"],
        date_from="2026-03-28",
        date_to="2026-03-31",
    ) == [["2026-03-28T00:00:00+01:00", 1], ["2026-03-29T00:00:00+01:00", 1]]
    assert rows(
        app, select=["timestamp"], date_from="2026-03-28", date_to="2026-03-31", limit=1
    ) == [["2026-03-28T23:59:00+01:00"]]


def test_numeric_aggregates_use_only_json_numbers(data_app: Flask) -> None:
    result = query(
        data_app,
        select=[
            "properties.plan",
            "sum(properties.amount)",
            "avg(properties.amount)",
            "min(properties.amount)",
            {"expr": "max(properties.amount)", "alias": "top"},
            "count()",
        ],
        group_by=["properties.plan"],
        order_by=[{"field": "top", "dir": "desc"}],
    )
    assert result["columns"][4] == "top"
    assert result["rows"] == [
        ["pro", 27.5, 13.75, 7.0, 20.5, 4],  # the text "5" and a missing amount are skipped
        ["free", 15.0, 7.5, 5.0, 10.0, 2],
    ]


def test_aggregates_over_no_numbers_are_null_and_types_are_exact(data_app: Flask) -> None:
    # No event has a numeric "plan": NULL, never 0 (ClickHouse's sum/min/max/avg over no
    # value would be 0 or nan without -OrNull).
    assert rows(
        data_app,
        select=[
            "sum(properties.plan)",
            "avg(properties.plan)",
            "min(properties.plan)",
            "max(properties.plan)",
            "count()",
        ],
    ) == [[None, None, None, None, 6]]
    nothing = [{"field": "event", "op": "eq", "value": "nothing"}]
    assert rows(
        data_app,
        select=["count()", "count_distinct(person_id)", "sum(properties.amount)"],
        where=nothing,
    ) == [[0, 0, None]]
    assert rows(data_app, select=["event", "count()"], where=nothing) == []
    # JSON types as on SQL: counts are integers, numeric aggregates floats (7.0, not 7).
    ((count, distinct_days, low, total, person),) = rows(
        data_app,
        select=[
            "count()",
            "count_distinct(day)",
            "min(properties.amount)",
            "sum(properties.amount)",
            "person_id",
        ],
        where=[
            {"field": "event", "op": "eq", "value": "buy"},
            {"field": "distinct_id", "op": "eq", "value": "u2"},
        ],
    )
    assert (count, distinct_days, low, total) == (1, 1, 7.0, 7.0)
    assert [type(v) for v in (count, distinct_days, low, total, person)] == [
        int,
        int,
        float,
        float,
        int,
    ]


def test_an_alias_named_like_a_column_is_only_a_label(data_app: Flask) -> None:
    # On ClickHouse an alias shadows a column of the same name, even inside aggregates.
    result = query(
        data_app,
        select=[
            {"expr": "event", "alias": "person_id"},
            {"expr": "count_distinct(distinct_id)", "alias": "distinct_id"},
            {"expr": "max(properties.amount)", "alias": "properties"},
        ],
        order_by=[{"field": "person_id", "dir": "desc"}],
    )
    assert result["columns"] == ["person_id", "distinct_id", "properties"]
    assert result["rows"] == [["view", 3, 5.0], ["buy", 3, 20.5]]


def test_person_properties_are_joined_through_the_merged_ids(data_app: Flask) -> None:
    assert rows(data_app, select=["person.properties.country", "count()"]) == [
        ["DE", 4],  # anon1's two events count under u1 since the merge
        ["FR", 2],
    ]
    assert rows(
        data_app,
        select=["count()"],
        where=[
            {"field": "event", "op": "in", "value": ["buy"]},
            {"field": "person.properties.country", "op": "eq", "value": "FR"},
        ],
    ) == [[1]]


@pytest.mark.parametrize(
    ("condition", "count"),
    [
        ({"field": "properties.amount", "op": "gte", "value": 10}, 2),
        ({"field": "properties.amount", "op": "gt", "value": 10}, 1),
        ({"field": "properties.amount", "op": "is_set"}, 5),
        ({"field": "properties.amount", "op": "is_not_set"}, 1),
        ({"field": "properties.plan", "op": "neq", "value": "pro"}, 2),
        ({"field": "properties.plan", "op": "not_in", "value": ["pro", "x"]}, 2),
        ({"field": "properties.amount", "op": "eq", "value": 5}, 2),  # text compare: 5 and "5"
        ({"field": "distinct_id", "op": "contains", "value": "ANON"}, 2),
        ({"field": "distinct_id", "op": "neq", "value": "u1"}, 4),
        ({"field": "session_id", "op": "is_not_set"}, 6),
        ({"field": "session_id", "op": "neq", "value": "s"}, 6),  # NULL counts as different
        ({"field": "day", "op": "eq", "value": "2026-03-02"}, 2),
        ({"field": "day", "op": "gt", "value": "2026-03-02"}, 2),
        ({"field": "day", "op": "lte", "value": "2026-03-02"}, 4),
        ({"field": "week", "op": "eq", "value": "2026-03-04"}, 4),
        ({"field": "day", "op": "in", "value": ["2026-03-01", "2026-03-08"]}, 3),
        ({"field": "timestamp", "op": "lt", "value": "2026-03-02"}, 2),
        ({"field": "timestamp", "op": "gte", "value": "2026-03-02T23:59:59.999999Z"}, 3),
        ({"field": "event", "op": "eq", "value": "view"}, 3),
    ],
)
def test_where_operators(data_app: Flask, condition: dict[str, Any], count: int) -> None:
    assert rows(data_app, select=["count()"], where=[condition]) == [[count]]


def test_person_id_filter_and_plain_rows_with_limit(data_app: Flask) -> None:
    people = rows(
        data_app, select=["distinct_id", "person_id"], group_by=["distinct_id", "person_id"]
    )
    assert [r[0] for r in people] == ["anon1", "u1", "u2"]
    assert people[0][1] == people[1][1] != people[2][1]  # anon1 and u1 are one person
    u1 = people[1][1]
    assert rows(
        data_app, select=["distinct_id"], where=[{"field": "person_id", "op": "eq", "value": u1}]
    ) == [["anon1"], ["anon1"], ["u1"], ["u1"]]
    latest = rows(
        data_app,
        select=["event", "timestamp"],
        order_by=[{"field": "timestamp", "dir": "desc"}],
        limit=2,
    )
    assert latest == [
        ["view", "2026-03-08T12:00:00+00:00"],
        ["buy", "2026-03-03T00:00:00+00:00"],
    ]
    assert rows(
        data_app,
        select=["distinct_id", "timestamp"],
        where=[{"field": "properties.amount", "op": "gte", "value": 10}],
    ) == [["anon1", "2026-03-01T11:00:00+00:00"], ["u1", "2026-03-02T09:00:00+00:00"]]


def test_python_api(data_app: Flask) -> None:
    with data_app.app_context():
        spec = QuerySpec.model_validate(
            {
                "select": ["event", "count()"],
                "date_from": at("2026-03-01"),
                "date_to": at("2026-03-09"),
            }
        )
        result = run_query(spec, scope_id="default")
        assert result.columns == ["event", "count()"]
        assert result.rows == [["buy", 3], ["view", 3]]
        with pytest.raises(ValidationError) as info:
            run_query(QuerySpec.model_validate({"select": ["nope"]}))
        assert info.value.field == "select[0]"


@pytest.mark.parametrize(
    ("body", "field", "named"),
    [
        ({"select": ["nope"]}, "select[0]", "nope"),
        ({"select": ["event", "median(properties.x)"]}, "select[1]", "median"),
        ({"select": ["sum(event)"]}, "select[0]", "sum"),
        ({"select": ["count(event)"]}, "select[0]", "count"),
        ({"select": ["count_distinct(bogus)"]}, "select[0]", "bogus"),
        ({"select": ["properties."]}, "select[0]", "key"),
        (
            {"select": ["event"], "where": [{"field": "bogus", "op": "eq", "value": 1}]},
            "where[0].field",
            "bogus",
        ),
        (
            {"select": ["event"], "where": [{"field": "event", "op": "like", "value": "x"}]},
            "where.0.op",
            "eq",
        ),
        (
            {"select": ["event"], "where": [{"field": "event", "op": "gt", "value": "x"}]},
            "where[0].op",
            "gt",
        ),
        (
            {"select": ["event"], "where": [{"field": "event", "op": "in", "value": []}]},
            "where[0].value",
            "list",
        ),
        (
            {"select": ["event"], "where": [{"field": "properties.a", "op": "gt", "value": "x"}]},
            "where[0].value",
            "number",
        ),
        (
            {"select": ["event"], "where": [{"field": "timestamp", "op": "eq", "value": "soon"}]},
            "where[0].value",
            "ISO",
        ),
        (
            {"select": ["event"], "where": [{"field": "person_id", "op": "eq", "value": "x"}]},
            "where[0].value",
            "integer",
        ),
        (
            {"select": ["event"], "where": [{"field": "event", "op": "eq"}]},
            "where[0].value",
            "single",
        ),
        (
            {"select": ["event", "count()"], "group_by": ["distinct_id"]},
            "group_by[0]",
            "distinct_id",
        ),
        (
            {"select": ["event", "distinct_id", "count()"], "group_by": ["event"]},
            "group_by",
            "distinct_id",
        ),
        ({"select": ["event"], "order_by": [{"field": "other"}]}, "order_by[0].field", "other"),
        (
            {"select": ["event"], "order_by": [{"field": "event", "dir": "up"}]},
            "order_by.0.dir",
            "asc",
        ),
        ({"select": ["event"], "limit": 0}, "limit", "1"),
        ({"select": ["event"], "limit": 10001}, "limit", "10000"),
        ({"select": []}, "select", "1"),
        ({"select": ["event"], "sql": "SELECT 1"}, "sql", "xtra"),
        ({"select": ["event", "event"]}, "select[1]", "twice"),
        (
            {"select": ["day"], "date_from": "2000-01-01", "date_to": "2026-01-01"},
            "date_from",
            "UMETRICS_MAX_REPORT_DAYS",
        ),
        (
            {"select": ["event"], "date_from": "2026-03-09", "date_to": "2026-03-01"},
            "date_from",
            "before",
        ),
    ],
)
def test_bad_specs_are_refused_naming_the_field(
    data_app: Flask, body: dict[str, Any], field: str, named: str
) -> None:
    error = refused(data_app, body)
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field
    assert named in error["message"]


INJECTIONS = [
    "'; DROP TABLE umetrics_events; --",
    '" OR 1=1 --',
    "x') UNION SELECT key_hash FROM umetrics_api_keys --",
    "$.plan",
    "plan\\",
    "%",
    "_",
]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_attempts_are_plain_values_or_refused(data_app: Flask, evil: str) -> None:
    with data_app.app_context():
        create_api_key("default", "ingest")  # something secret that must not leak
    before = event_count(data_app)
    # In a property key: just a key nobody has (keys with '"' or '\\' are refused: SQLite's
    # JSON paths cannot address them, and both databases must answer alike).
    for expr, expected in (
        (f"properties.{evil}", [[None, 6]]),
        (f"person.properties.{evil}", [[None, 6]]),
        (f"sum(properties.{evil})", [[None, 6]]),
    ):
        if '"' in evil or "\\" in evil:
            assert refused(data_app, {"select": [expr, "count()"]})["details"][0]["field"] == (
                "select[0]"
            )
        else:
            assert rows(data_app, select=[expr, "count()"]) == expected
    # In values: matched literally (LIKE wildcards escaped).
    for field in ("event", "distinct_id", "properties.plan", "person.properties.country"):
        for op, expected in (("eq", 0), ("contains", 0), ("neq", 6), ("in", 0)):
            value: Any = [evil] if op == "in" else evil
            where = [{"field": field, "op": op, "value": value}]
            assert rows(data_app, select=["count()"], where=where) == [[expected]], (field, op)
    # In field names, aggregates, operators, directions and aliases: refused.
    for body in (
        {"select": [evil]},
        {"select": [f"count({evil})"]},
        {"select": ["event"], "where": [{"field": evil, "op": "eq", "value": 1}]},
        {"select": ["event"], "where": [{"field": "event", "op": evil, "value": 1}]},
        {"select": ["event"], "group_by": [evil]},
        {"select": ["event"], "order_by": [{"field": evil}]},
        {"select": ["event"], "order_by": [{"field": "event", "dir": evil}]},
        {"select": ["event"], "limit": evil},
        {"select": ["event"], "date_from": evil},
    ):
        refused(data_app, body)
    # An alias is a label in the answer, never SQL; only identifier-like aliases are accepted.
    alias = {"select": [{"expr": "event", "alias": evil}]}
    if evil.isidentifier():
        assert query(data_app, **alias)["columns"] == [evil]
    else:
        refused(data_app, alias)
    assert event_count(data_app) == before
    with data_app.app_context():
        names = set(inspect(current_state().engine).get_table_names())
    assert {"umetrics_events", "umetrics_persons", "umetrics_api_keys"} <= names
    assert rows(data_app, select=["count()"]) == [[6]]  # every event still there


@pytest.mark.parametrize("field", ["event", "distinct_id", "properties.plan", "timestamp"])
def test_a_lone_surrogate_in_a_value_is_refused_not_a_500(data_app: Flask, field: str) -> None:
    data_app.config["PROPAGATE_EXCEPTIONS"] = False
    where = '[{"field": "' + field + '", "op": "eq", "value": "a\\ud800"}]'
    body = '{"select": ["count()"], "where": ' + where + "}"
    response = data_app.test_client().post(
        "/umetrics/api/query", data=body, content_type="application/json"
    )
    assert response.status_code == 400, response.json
    assert response.json["error"]["details"][0]["field"] == "where[0].value"
    assert "surrogate" in response.json["error"]["message"]


def test_keys_with_quotes_and_spaces_reach_the_right_property(data_app: Flask) -> None:
    assert rows(
        data_app,
        select=["properties.we'ird key", "count()"],
        where=[{"field": "properties.we'ird key", "op": "is_set"}],
    ) == [["v", 1]]


def test_query_needs_metrics_view_on_the_scope(make_app: AppFactory) -> None:
    app = make_app()
    client = app.test_client()
    body = {"select": ["count()"], "scope_id": "b"}
    anonymous = client.post("/umetrics/api/query", json=body)
    assert anonymous.status_code == 401
    with app.app_context():
        other = create_api_key("a", "metrics.view")
        ingest = create_api_key("b", "ingest")
        view = create_api_key("b", "metrics.view")
    assert (
        client.post("/umetrics/api/query", json=body, headers={"Authorization": f"Bearer {other}"})
    ).status_code == 403
    assert (
        client.post("/umetrics/api/query", json=body, headers={"Authorization": f"Bearer {ingest}"})
    ).status_code == 403
    load(app, [("x", "e", "2026-03-01T00:00")], scope_id="b")
    load(app, [("y", "e", "2026-03-01T00:00"), ("z", "e", "2026-03-01T00:00")], scope_id="a")
    answer = client.post(
        "/umetrics/api/query",
        json={**body, **RANGE},
        headers={"Authorization": f"Bearer {view}"},
    )
    assert answer.status_code == 200 and answer.json["rows"] == [[1]]  # scope b's only


FIELDS = [
    "event",
    "distinct_id",
    "person_id",
    "session_id",
    "timestamp",
    "day",
    "week",
    "month",
    "properties.plan",
    "properties.amount",
    "person.properties.country",
]
texts = st.one_of(st.sampled_from(FIELDS), st.text(max_size=30))
items = st.one_of(
    texts,
    st.builds(
        lambda a, f: f"{a}({f})",
        st.sampled_from(["count", "count_distinct", "sum", "avg", "min", "max", "median", ""]),
        st.one_of(st.just(""), texts),
    ),
    st.fixed_dictionaries({"expr": texts}, optional={"alias": st.text(max_size=10)}),
    st.integers(),
    st.none(),
)
scalars = st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.booleans(), st.none())
conditions = st.fixed_dictionaries(
    {"field": texts},
    optional={
        "op": st.one_of(
            st.sampled_from(
                [
                    "eq",
                    "neq",
                    "gt",
                    "gte",
                    "lt",
                    "lte",
                    "in",
                    "not_in",
                    "contains",
                    "is_set",
                    "is_not_set",
                ]
            ),
            st.text(max_size=8),
        ),
        "value": st.one_of(
            scalars,
            st.lists(scalars, max_size=3),
            st.dictionaries(st.text(max_size=3), scalars, max_size=2),
        ),
    },
)
specs = st.fixed_dictionaries(
    {"select": st.one_of(st.lists(items, max_size=4), items)},
    optional={
        "where": st.one_of(st.lists(conditions, max_size=3), scalars),
        "group_by": st.lists(texts, max_size=3),
        "order_by": st.lists(
            st.fixed_dictionaries(
                {"field": texts}, optional={"dir": st.sampled_from(["asc", "desc", "x"])}
            ),
            max_size=2,
        ),
        "limit": st.one_of(st.integers(min_value=-5, max_value=20_000), st.text(max_size=4)),
        "date_from": st.sampled_from(["2026-03-01", "2026-03-05T10:00:00Z", "x", "2026-13-01"]),
        "date_to": st.sampled_from(["2026-03-09", "2026-03-01", "2027-01-01"]),
        "scope_id": st.sampled_from(["default", "other", "bad scope!"]),
    },
)


valid_specs = st.fixed_dictionaries(
    {
        "select": st.lists(
            st.sampled_from(
                [*FIELDS, "count()", "count_distinct(person_id)", "sum(properties.amount)"]
            ),
            min_size=1,
            max_size=4,
            unique=True,
        )
    },
    optional={
        "where": st.lists(
            st.fixed_dictionaries(
                {
                    "field": st.sampled_from(["event", "distinct_id", "properties.plan"]),
                    "op": st.sampled_from(["eq", "neq", "contains", "is_set"]),
                    "value": st.text(max_size=10),
                }
            ),
            max_size=2,
        ),
        "limit": st.integers(min_value=1, max_value=50),
    },
)


def test_random_specs_never_cause_a_server_error(data_app: Flask) -> None:
    data_app.config["PROPAGATE_EXCEPTIONS"] = False
    client = data_app.test_client()
    seen: set[int] = set()

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(st.one_of(valid_specs, specs))
    def check(spec: dict[str, Any]) -> None:
        response = client.post("/umetrics/api/query", json=spec)
        assert response.status_code in (200, 400), (spec, response.status_code, response.json)
        seen.add(response.status_code)
        if response.status_code == 200:
            body = response.json
            assert len(body["rows"]) <= 10_000
            assert all(len(row) == len(body["columns"]) for row in body["rows"])

    check()
    assert seen == {200, 400}  # both valid and invalid specs were tried


def test_the_route_is_in_the_openapi_document(data_app: Flask) -> None:
    document = data_app.test_client().get("/umetrics/api/openapi.json").json
    operation = document["paths"]["/umetrics/api/query"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]
