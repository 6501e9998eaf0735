"""The persons behind a number: funnel steps and drop-offs, retention cells, trend points —
each list equal to the number the report shows, on every event store."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_umetrics import UMetrics
from flask_umetrics.errors import ValidationError
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.funnel import FunnelExclusion, FunnelStep, funnel, funnel_persons
from flask_umetrics.queries.persons import persons_behind
from flask_umetrics.queries.trends import trend_persons

from .conftest import AppFactory, allow_all
from .events_data import at, load
from .test_funnel_exclusions import _load_cancellations

pytestmark = pytest.mark.event_stores

PREFIX = "/umetrics/api/query"
FUNNEL = "date_from=2026-03-01&date_to=2026-03-02&step=signup&step=view&step=buy"


def _client(make_app: AppFactory) -> tuple[Flask, FlaskClient]:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    return app, app.test_client()


def _ids(client: FlaskClient, url: str) -> list[str]:
    """Every person of the list (walking the pages), by their first distinct id."""
    found: list[str] = []
    offset = 0
    while True:
        answer = client.get(f"{url}&limit=2&offset={offset}")
        assert answer.status_code == 200, answer.json
        body = answer.json
        assert body["limit"] == 2 and body["offset"] == offset
        found += [p["distinct_ids"][0] for p in body["persons"]]
        offset += 2
        if offset >= body["total"]:
            assert len(found) == body["total"]
            return found


def test_funnel_steps_and_dropoffs_add_up(make_app: AppFactory) -> None:
    app, client = _client(make_app)
    _load_cancellations(app)
    for exclude in [None, [{"event": "cancel", "from_step": 1, "to_step": 2}]]:
        query = FUNNEL + (f"&{urlencode({'exclude': json.dumps(exclude)})}" if exclude else "")
        counts = [s["count"] for s in client.get(f"{PREFIX}/funnel?{query}").json["steps"]]
        reached = [
            _ids(client, f"{PREFIX}/funnel/persons?{query}&funnel_step={n}") for n in (1, 2, 3)
        ]
        dropped = [
            _ids(client, f"{PREFIX}/funnel/persons?{query}&funnel_step={n}&dropoff=true")
            for n in (2, 3)
        ]
        assert [len(r) for r in reached] == counts
        for n in (1, 2):  # step n = those who went on + those who dropped off
            assert sorted(reached[n] + dropped[n - 1]) == sorted(reached[n - 1])
            assert not set(reached[n]) & set(dropped[n - 1])
    # Known by construction (see _load_cancellations): b and d are excluded between 2 and 3.
    assert sorted(reached[2]) == ["a", "c"]
    assert sorted(dropped[0]) == ["e"]
    assert sorted(dropped[1]) == ["f", "g"]


def test_funnel_persons_carry_the_time_they_qualified(make_app: AppFactory) -> None:
    app, client = _client(make_app)
    _load_cancellations(app)
    body = client.get(f"{PREFIX}/funnel/persons?{FUNNEL}&funnel_step=3").json
    assert body["total"] == 3 and body["limit"] == 50 and body["offset"] == 0
    first = body["persons"][0]
    assert set(first) >= {"id", "distinct_ids", "properties", "qualified_at"}
    assert {p["distinct_ids"][0]: p["qualified_at"] for p in body["persons"]} == {
        "a": "2026-03-01T10:20:00+00:00",
        "b": "2026-03-01T10:20:00+00:00",
        "c": "2026-03-01T10:20:00+00:00",
    }
    dropped = client.get(f"{PREFIX}/funnel/persons?{FUNNEL}&funnel_step=2&dropoff=true").json
    assert [p["qualified_at"] for p in dropped["persons"]] == ["2026-03-01T10:00:00+00:00"]


def test_funnel_persons_from_python(app: Flask) -> None:
    _load_cancellations(app)
    steps = [FunnelStep("signup"), FunnelStep("view"), FunnelStep("buy")]
    exclusions = [FunnelExclusion("cancel", (), 0, 1)]
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-02"))
        counts = [s.count for s in funnel(ctx, steps, exclusions=exclusions).steps]
        for n in (1, 2, 3):
            source = funnel_persons(ctx, steps, funnel_step=n, exclusions=exclusions)
            assert persons_behind(source, limit=200).total == counts[n - 1]
        with pytest.raises(ValidationError) as error:
            funnel_persons(ctx, steps, funnel_step=4)
        assert error.value.field == "funnel_step"


def _load_plans(app: Flask) -> None:
    """signup (with a plan) -> view -> buy. By entry: pro p1 p2 p3 (3, 2, 1), free p4 p5
    (2, 1, 1), team p6 (1, 1, 0), no plan p7 (1, 1, 1). p2's view says free: by last touch
    p2 is free, pro (2, 1, 1) and free (3, 2, 1) swap places."""
    pro, free, team = {"plan": "pro"}, {"plan": "free"}, {"plan": "team"}
    rows: list[tuple[object, ...]] = []
    for person, plan, reached in (
        ("p1", pro, 3),
        ("p2", pro, 2),
        ("p3", pro, 1),
        ("p4", free, 3),
        ("p5", free, 1),
        ("p6", team, 2),
        ("p7", None, 3),
    ):
        rows.append((person, "signup", "2026-03-01T10:00", plan))
        if reached >= 2:
            rows.append((person, "view", "2026-03-01T10:10", free if person == "p2" else None))
        if reached >= 3:
            rows.append((person, "buy", "2026-03-01T10:20"))
    load(app, rows)


#: (breakdown_limit, attribution) -> per shown group: the persons reaching steps 1, 2 and 3.
PLAN_GROUPS: dict[tuple[int, str], dict[str | None, list[list[str]]]] = {
    (2, "entry"): {
        "pro": [["p1", "p2", "p3"], ["p1", "p2"], ["p1"]],
        "free": [["p4", "p5"], ["p4"], ["p4"]],
        "$other": [["p6", "p7"], ["p6", "p7"], ["p7"]],  # team, then no plan (missing last)
    },
    (4, "entry"): {
        "pro": [["p1", "p2", "p3"], ["p1", "p2"], ["p1"]],
        "free": [["p4", "p5"], ["p4"], ["p4"]],
        "team": [["p6"], ["p6"], []],
        None: [["p7"], ["p7"], ["p7"]],
    },
    (1, "last_touch"): {
        "free": [["p2", "p4", "p5"], ["p2", "p4"], ["p4"]],
        "$other": [["p1", "p3", "p6", "p7"], ["p1", "p6", "p7"], ["p1", "p7"]],
    },
}


@pytest.mark.parametrize(("limit", "attribution"), list(PLAN_GROUPS))
def test_funnel_breakdown_persons_match_each_group(
    make_app: AppFactory, limit: int, attribution: str
) -> None:
    app, client = _client(make_app)
    _load_plans(app)
    query = f"{FUNNEL}&breakdown=plan&breakdown_limit={limit}&breakdown_attribution={attribution}"
    answer = client.get(f"{PREFIX}/funnel?{query}").json
    groups = {g["value"]: [s["count"] for s in g["steps"]] for g in answer["breakdowns"]}
    expected = PLAN_GROUPS[(limit, attribution)]
    assert groups == {value: [len(ids) for ids in steps] for value, steps in expected.items()}
    for value, steps in expected.items():
        picked = query + ("" if value is None else "&" + urlencode({"breakdown_value": value}))
        for n in (1, 2, 3):
            url = f"{PREFIX}/funnel/persons?{picked}&funnel_step={n}"
            assert sorted(_ids(client, url)) == steps[n - 1], (value, n)
            if n > 1:
                dropped = sorted(set(steps[n - 2]) - set(steps[n - 1]))
                assert sorted(_ids(client, f"{url}&dropoff=true")) == dropped, (value, n)
    # A value the report does not show (ranked into $other, or absent) lists nobody.
    for value in ("team", "nope") if limit < 3 else ("nope",):
        url = f"{PREFIX}/funnel/persons?{query}&breakdown_value={value}&funnel_step=1&limit=5"
        assert client.get(url).json["total"] == 0
    # Without a breakdown the value is an error; the whole funnel's list is unchanged.
    bad = client.get(f"{PREFIX}/funnel/persons?{FUNNEL}&breakdown_value=pro&funnel_step=1")
    assert bad.status_code == 400 and "breakdown_value" in bad.get_data(as_text=True)
    everyone = sorted(_ids(client, f"{PREFIX}/funnel/persons?{FUNNEL}&funnel_step=2"))
    assert everyone == ["p1", "p2", "p4", "p6", "p7"]


def _retention_data(app: Flask) -> None:
    load(
        app,
        [
            ("a", "open", "2026-03-02T09:00"),
            ("a", "open", "2026-03-03T09:00"),
            ("b", "open", "2026-03-02T10:00"),
            ("b", "open", "2026-03-04T10:00"),
            ("c", "open", "2026-03-03T11:00"),
            ("c", "open", "2026-03-04T11:00"),
            ("c", "open", "2026-03-05T11:00"),
            ("d", "open", "2026-03-02T12:00"),
        ],
    )


@pytest.mark.parametrize("bounded", ["true", "false"])
def test_every_retention_cell_lists_its_count(make_app: AppFactory, bounded: str) -> None:
    app, client = _client(make_app)
    _retention_data(app)
    query = (
        "date_from=2026-03-02&date_to=2026-03-05&start_event=open&return_event=open"
        f"&period=day&periods=2&bounded={bounded}"
    )
    report = client.get(f"{PREFIX}/retention?{query}").json
    assert report["cohorts"][0]["counts"] == ([3, 1, 1] if bounded == "true" else [3, 2, 1])
    for cohort in report["cohorts"]:
        for k, count in enumerate(cohort["counts"]):
            url = f"{PREFIX}/retention/persons?{query}&{urlencode({'cohort': cohort['start']})}"
            assert len(_ids(client, f"{url}&period={k}")) == count, (cohort["start"], k)
    first = report["cohorts"][0]["start"]
    url = f"{PREFIX}/retention/persons?{query}&{urlencode({'cohort': first})}&period=2"
    assert sorted(_ids(client, url)) == ["b"]


def test_every_trend_point_lists_its_unique_persons(make_app: AppFactory) -> None:
    app, client = _client(make_app)
    load(
        app,
        [
            ("a", "signup", "2026-03-01T09:00", {"plan": "pro"}),
            ("a", "signup", "2026-03-01T10:00", {"plan": "pro"}),
            ("b", "signup", "2026-03-01T11:00", {"plan": "free"}),
            ("c", "signup", "2026-03-01T12:00"),
            ("c", "signup", "2026-03-02T12:00", {"plan": "pro"}),
            ("d", "signup", "2026-03-02T13:00", {"plan": "team"}),
            ("d", "view", "2026-03-02T13:00", {"plan": "team"}),
        ],
    )
    base = "date_from=2026-03-01&date_to=2026-03-04&event=signup&math=unique_persons"
    for extra in ["", "&breakdown=plan&breakdown_limit=1", "&breakdown=plan&breakdown_limit=5"]:
        report = client.get(f"{PREFIX}/trends?{base}{extra}").json
        for series in report["results"]:
            value = series["breakdown_value"]
            picked = "" if value is None else f"&{urlencode({'breakdown_value': value})}"
            for point in series["series"]:
                url = f"{PREFIX}/trends/persons?{base}{extra}{picked}"
                url += f"&{urlencode({'time': point['time']})}"
                assert len(_ids(client, url)) == point["value"], (extra, value, point)
    day_one = client.get(f"{PREFIX}/trends?{base}").json["results"][0]["series"][0]["time"]
    url = f"{PREFIX}/trends/persons?{base}&breakdown=plan&breakdown_limit=1"
    other = f"{url}&breakdown_value=%24other&{urlencode({'time': day_one})}"
    # pro is the top value; the rest, and c's missing value, are $other
    assert sorted(_ids(client, other)) == ["b", "c"]
    body = client.get(f"{PREFIX}/trends/persons?{base}&{urlencode({'time': day_one})}").json
    assert {p["distinct_ids"][0]: p["qualified_at"] for p in body["persons"]} == {
        "a": "2026-03-01T09:00:00+00:00",
        "b": "2026-03-01T11:00:00+00:00",
        "c": "2026-03-01T12:00:00+00:00",
    }


def test_other_persons_rank_as_the_report_without_computing_it(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``$other`` persons need the report's top values only: ranked by signups over the whole
    range (not by persons, not by the point's day, not counting views), missing last."""
    load(
        app,
        [
            ("a", "signup", "2026-03-01T09:00", {"plan": "x"}),
            ("a", "signup", "2026-03-01T09:10", {"plan": "x"}),
            ("a", "signup", "2026-03-01T09:20", {"plan": "x"}),
            ("b", "signup", "2026-03-01T10:00", {"plan": "y"}),
            ("c", "signup", "2026-03-01T11:00", {"plan": "y"}),
            ("d", "signup", "2026-03-01T12:00", {"plan": "Z"}),
            ("d", "signup", "2026-03-01T12:10", {"plan": "Z"}),
            ("d", "signup", "2026-03-02T12:00", {"plan": "Z"}),
            ("d", "signup", "2026-03-02T12:10", {"plan": "Z"}),
            ("e", "signup", "2026-03-01T13:00"),
            ("f", "signup", "2026-03-01T14:00"),
            ("g", "signup", "2026-03-01T15:00"),
            *[("b", "view", f"2026-03-01T16:0{i}", {"plan": "y"}) for i in range(5)],
        ],
    )

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the persons behind $other computed the whole trends report")

    monkeypatch.setattr("flask_umetrics.queries.trends.trends", refuse)

    def other(limit: int, time: str = "2026-03-01T00:00:00+00:00") -> list[str]:
        with app.app_context():
            ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-03"))
            source = trend_persons(
                ctx,
                time=time,
                event="signup",
                breakdown="plan",
                breakdown_limit=limit,
                breakdown_value="$other",
            )
            listed = persons_behind(source, limit=100)
        assert listed.total == len(listed.persons)
        return sorted(p.distinct_ids[0] for p in listed.persons)

    # Signups: Z 4 (2 on March 1), x 3, missing 3 (after x: missing last), y 2 (7 with views).
    assert other(1) == ["a", "b", "c", "e", "f", "g"]
    assert other(2) == ["b", "c", "e", "f", "g"]
    assert other(3) == ["b", "c"]
    assert other(4) == []
    assert other(1, "2026-03-02T00:00:00+00:00") == []
    assert other(2, "2026-03-02T00:00:00+00:00") == []


def test_csv_by_format_or_accept(make_app: AppFactory) -> None:
    app, client = _client(make_app)
    _load_cancellations(app)
    url = f"{PREFIX}/funnel/persons?{FUNNEL}&funnel_step=3"
    for answer in [
        client.get(f"{url}&format=csv"),
        client.get(url, headers={"Accept": "text/csv"}),
    ]:
        assert answer.status_code == 200
        assert answer.content_type.startswith("text/csv")
        assert answer.headers["X-Total-Count"] == "3"
        rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
        assert sorted(r["distinct_ids"] for r in rows) == ["a", "b", "c"]
        assert all(r["qualified_at"] == "2026-03-01T10:20:00+00:00" for r in rows)


def test_csv_escapes_distinct_ids_that_a_spreadsheet_would_run(make_app: AppFactory) -> None:
    """Distinct ids come from browsers: ``=HYPERLINK(...)`` must reach a spreadsheet as text."""
    app, client = _client(make_app)
    load(app, [("=1+1", "signup", "2026-03-01T10:00"), ("@sum", "signup", "2026-03-01T10:01")])
    answer = client.get(f"{PREFIX}/funnel/persons?{FUNNEL}&funnel_step=1&format=csv")
    assert answer.status_code == 200
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert sorted(r["distinct_ids"] for r in rows) == ["'=1+1", "'@sum"]


@pytest.mark.parametrize(
    ("path", "extra", "field"),
    [
        ("funnel/persons", f"{FUNNEL}&funnel_step=0", "funnel_step"),
        ("funnel/persons", f"{FUNNEL}&funnel_step=4", "funnel_step"),
        ("funnel/persons", FUNNEL, "funnel_step"),
        ("funnel/persons", f"{FUNNEL}&funnel_step=1&dropoff=true", "dropoff"),
        ("funnel/persons", f"{FUNNEL}&funnel_step=1&limit=0", "limit"),
        ("funnel/persons", f"{FUNNEL}&funnel_step=1&limit=201", "limit"),
        ("funnel/persons", f"{FUNNEL}&funnel_step=1&offset=-1", "offset"),
        ("funnel/persons", f"{FUNNEL}&funnel_step=1&format=xml", "format"),
        ("retention/persons", "period=day&period=1", "cohort"),
        ("retention/persons", "cohort=1999-01-01&period=day&period=1", "cohort"),
        ("retention/persons", "cohort=x&period=day", "period"),
        ("retention/persons", "cohort=x&period=day&period=week&period=1", "period"),
        ("trends/persons", "event=signup", "time"),
        ("trends/persons", "event=signup&time=1999-01-01", "time"),
        ("trends/persons", "time=x&breakdown_value=pro", "breakdown_value"),
        ("lifecycle/persons", "status=new", "time"),
        ("lifecycle/persons", "time=1999-01-01T00:00:00%2B00:00&status=new", "time"),
        ("lifecycle/persons", "time=x", "status"),
        ("lifecycle/persons", "time=x&status=gone", "status"),
        ("stickiness/persons", "", "periods"),
        ("stickiness/persons", "periods=0", "periods"),
        ("stickiness/persons", "date_from=2026-03-02&date_to=2026-03-06&periods=5", "periods"),
    ],
)
def test_bad_input_names_the_field(make_app: AppFactory, path: str, extra: str, field: str) -> None:
    _, client = _client(make_app)
    answer = client.get(f"{PREFIX}/{path}?{extra}")
    assert answer.status_code == 400, answer.json
    assert field in answer.json["error"]["message"], answer.json
