"""The persons behind a funnel correlation cell: the converted (or dropped) persons who did an
event inside their attempt's interval, equal to the cell's count, on every event store."""

from __future__ import annotations

import csv
import html
import io
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from flask_umetrics import UMetrics, create_api_key, identify
from flask_umetrics.errors import ValidationError
from flask_umetrics.events.validation import to_micros
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.funnel import FunnelExclusion, FunnelStep
from flask_umetrics.queries.funnel_correlation import (
    funnel_correlation,
    funnel_correlation_persons,
)
from flask_umetrics.queries.persons import persons_behind

from .admin_html import table_cells
from .conftest import AppFactory, allow_all
from .events_data import at, clear_events, load
from .reference_models import Ev, RefStep, _by_person, ref_attempts, stored_events
from .test_admin_persons_behind import _app as admin_app
from .test_admin_persons_behind import _ids as ids
from .test_admin_persons_behind import _links as links
from .test_funnel import GRID, merges, slot
from .test_funnel_correlation import HOUR, JOURNEYS, QUERY, SIGNUP_BUY, correlation_rows

pytestmark = pytest.mark.event_stores

URL = "/umetrics/api/query/funnel/correlation/persons"


def cell(app: Flask, event: str, converted: bool, **options: Any) -> dict[str, str | None]:
    """The cell's persons: first distinct id -> when they qualified."""
    options.setdefault("window_seconds", HOUR)
    date_to = options.pop("date_to", "2026-03-08")
    with app.app_context():
        ctx = report_context(
            date_from=at("2026-03-01"), date_to=at(date_to), filters=options.pop("filters", None)
        )
        source = funnel_correlation_persons(
            ctx, SIGNUP_BUY, event=event, converted=converted, **options
        )
        page = persons_behind(source, limit=200)
    assert page.total == len(page.persons)
    return {p.distinct_ids[0]: p.qualified_at for p in page.persons}


def test_each_cell_lists_its_persons_at_their_first_event(app: Flask) -> None:
    load(app, JOURNEYS)
    # Converted: a, b, e; dropped: c, d, f (tests/test_funnel_correlation.py says why).
    assert cell(app, "video", True) == {
        "a": "2026-03-01T10:10:00+00:00",
        "b": "2026-03-02T10:05:00+00:00",  # b's first of two
    }
    assert cell(app, "video", False) == {}  # d's video is at the window's end
    assert cell(app, "help", False) == {
        "c": "2026-03-03T10:10:00+00:00",
        "d": "2026-03-04T10:50:00+00:00",
    }
    assert cell(app, "share", True) == {"a": "2026-03-01T10:15:00+00:00"}
    assert cell(app, "share", False) == {"c": "2026-03-03T10:20:00+00:00"}
    assert cell(app, "faq", True) == {} and cell(app, "faq", False) == {}
    assert cell(app, "faq", False, window_seconds=2 * HOUR) == {"d": "2026-03-04T11:30:00+00:00"}
    assert cell(app, "nothing", True) == {}


def test_every_cell_equals_the_reports_counts(app: Flask) -> None:
    load(app, JOURNEYS)
    for window in (HOUR, 2 * HOUR):
        with app.app_context():
            ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-08"))
            found = funnel_correlation(ctx, SIGNUP_BUY, window_seconds=window).events
        assert len(found) == (3 if window == HOUR else 4)
        for e in found:
            assert len(cell(app, e.event, True, window_seconds=window)) == e.success_count
            assert len(cell(app, e.event, False, window_seconds=window)) == e.failure_count


def test_chosen_attempt_exclusions_and_filters(app: Flask) -> None:
    load(
        app,
        [
            ("a", "signup", "2026-03-01T23:30"),
            ("a", "video", "2026-03-02T00:10", {"plan": "pro"}),  # after date_to: in the window
            ("b", "signup", "2026-03-01T08:00", {"plan": "pro"}),
            ("b", "help", "2026-03-01T08:30", {"plan": "free"}),
            ("b", "signup", "2026-03-01T10:00", {"plan": "pro"}),
            ("b", "video", "2026-03-01T10:10", {"plan": "pro"}),
            ("b", "buy", "2026-03-01T10:20", {"plan": "pro"}),
        ],
    )
    # b's chosen attempt is the converting one: the help before it is not in its interval.
    assert cell(app, "video", False, date_to="2026-03-02") == {"a": "2026-03-02T00:10:00+00:00"}
    assert cell(app, "video", True, date_to="2026-03-02") == {"b": "2026-03-01T10:10:00+00:00"}
    assert cell(app, "help", False, date_to="2026-03-02") == {}
    # Excluding video between the steps: a is gone, b dropped with its first attempt's help.
    excluded = [FunnelExclusion("video", (), 0, 1)]
    assert cell(app, "help", False, date_to="2026-03-02", exclusions=excluded) == {
        "b": "2026-03-01T08:30:00+00:00"
    }
    assert cell(app, "video", True, date_to="2026-03-02", exclusions=excluded) == {}
    # The report's filters apply to the event as to the steps: b's help is not "pro".
    pro = [{"key": "plan", "op": "eq", "value": "pro"}]
    assert cell(app, "video", True, date_to="2026-03-02", filters=pro) == {
        "b": "2026-03-01T10:10:00+00:00"
    }
    assert cell(app, "help", False, date_to="2026-03-02", filters=pro) == {}


def test_merged_persons_count_once(app: Flask) -> None:
    load(
        app,
        [
            ("anon", "signup", "2026-03-01T10:00"),
            ("anon", "video", "2026-03-01T10:05"),
            ("user", "video", "2026-03-01T10:06"),
            ("user", "buy", "2026-03-01T10:10"),
            ("c", "signup", "2026-03-01T10:00"),
        ],
    )
    with app.app_context():
        identify("user", anon_id="anon")
    persons = cell(app, "video", True)
    assert list(persons.values()) == ["2026-03-01T10:05:00+00:00"]
    assert cell(app, "video", False) == {}


def test_bad_arguments(app: Flask) -> None:
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-08"))
        for event, field in [("signup", "event"), ("", "event"), ("x" * 201, "event")]:
            with pytest.raises(ValidationError) as error:
                funnel_correlation_persons(ctx, SIGNUP_BUY, event=event, converted=True)
            assert error.value.field == field
        with pytest.raises(ValidationError) as error:
            funnel_correlation_persons(ctx, SIGNUP_BUY, event="v", converted=True, order="x")
        assert error.value.field == "order"


def _client(make_app: AppFactory) -> tuple[Flask, FlaskClient]:
    extension = UMetrics()
    allow_all(extension)
    app = make_app(extension)
    return app, app.test_client()


def test_route_pages_and_csv(make_app: AppFactory) -> None:
    app, client = _client(make_app)
    load(app, JOURNEYS)
    first = client.get(f"{URL}?{QUERY}&event=help&converted=false&limit=1")
    assert first.status_code == 200, first.json
    assert (first.json["total"], first.json["limit"], first.json["offset"]) == (2, 1, 0)
    second = client.get(f"{URL}?{QUERY}&event=help&converted=false&limit=1&offset=1").json
    pages = first.json["persons"] + second["persons"]
    assert [(p["distinct_ids"], p["qualified_at"]) for p in pages] == [
        (["c"], "2026-03-03T10:10:00+00:00"),
        (["d"], "2026-03-04T10:50:00+00:00"),
    ]
    video = client.get(f"{URL}?{QUERY}&event=video&converted=true").json
    assert sorted(p["distinct_ids"][0] for p in video["persons"]) == ["a", "b"]
    answer = client.get(f"{URL}?{QUERY}&event=share&converted=true&format=csv")
    assert answer.status_code == 200 and answer.headers["X-Total-Count"] == "1"
    assert answer.content_type.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0][:3] == ["id", "distinct_ids", "qualified_at"]
    assert [r[1:3] for r in rows[1:]] == [["a", "2026-03-01T10:15:00+00:00"]]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ("converted=true", "event"),
        ("event=&converted=true", "event"),
        ("event=signup&converted=true", "event"),
        ("event=video", "converted"),
        ("event=video&converted=maybe", "converted"),
        ("event=video&converted=true&breakdown=plan", "breakdown"),
        ("event=video&converted=true&mode=trends", "mode"),
        ("event=video&converted=true&limit=0", "limit"),
        ("event=video&converted=true&order=sideways", "order"),
    ],
)
def test_route_names_the_bad_field(make_app: AppFactory, bad: str, field: str) -> None:
    _, client = _client(make_app)
    response = client.get(f"{URL}?{QUERY}&{bad}")
    assert response.status_code == 400, response.json
    assert field in response.json["error"]["message"], response.json


@pytest.mark.parametrize(
    ("permission", "status"), [("metrics.view", 200), ("metrics.manage", 200), ("ingest", 403)]
)
def test_route_needs_metrics_view(app: Flask, permission: str, status: int) -> None:
    with app.app_context():
        key = create_api_key("s", permission)
    client = app.test_client()
    query = f"scope_id=s&{QUERY}&event=video&converted=true"
    assert client.get(f"{URL}?{query}").status_code == 401
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(f"{URL}?{query}", headers=headers).status_code == status
    other = client.get(f"{URL}?{query.replace('scope_id=s', 'scope_id=other')}", headers=headers)
    assert other.status_code == 403


def test_funnels_page_links_each_count_to_its_persons(make_app: AppFactory) -> None:
    app = admin_app(make_app, {"metrics.view"})
    load(app, JOURNEYS)
    client = app.test_client()
    query = "date_from=2026-03-01&date_to=2026-03-08&step=signup&step=buy"
    page = client.get(f"/umetrics/admin/funnels?{query}&window_value=1&window_unit=hours").text
    rows = table_cells(page, "funnel-correlation")
    assert [(r[0], r[3], r[4]) for r in rows] == [
        ("video", "2", "0"),
        ("help", "0", "2"),
        ("share", "1", "1"),
    ]
    converted = links(page, "funnel-correlation-converted-persons")
    dropped = links(page, "funnel-correlation-dropped-persons")
    assert all("/umetrics/admin/persons-behind/funnel_correlation?" in u for u in converted)
    lists = [client.get(u) for u in converted + dropped]
    assert all(answer.status_code == 200 for answer in lists)
    assert [ids(answer.text) for answer in lists] == [
        ["a", "b"],  # video, converted
        [],  # help, converted
        ["a"],  # share, converted
        [],  # video, dropped
        ["c", "d"],  # help, dropped
        ["c"],  # share, dropped
    ]
    title = html.unescape(lists[4].text)
    assert "Persons who dropped off and did help on the way" in title
    assert "Persons who converted and did video on the way" in html.unescape(lists[0].text)
    # Back to the funnel: the page's parameters without what picked the cell.
    (back,) = links(lists[4].text, "persons-back")
    assert back.startswith("/umetrics/admin/funnels?")
    assert "event=" not in back and "converted=" not in back
    assert "step=signup&step=buy" in back and "window=3600" in back


# --- property test against a plain-Python reference ----------------------------------------


def ref_cells(
    evs: list[Ev],
    steps: list[RefStep],
    date_from: int,
    date_to: int,
    window: int,
    order: str,
) -> dict[tuple[str, bool], dict[int, int]]:
    """Per (name, converted): person -> their first such event (µs), by the definition in
    docs/funnels-retention.md."""
    names = {s.event for s in steps}
    cells: dict[tuple[str, bool], dict[int, int]] = {}
    for person, person_events in _by_person(evs).items():
        attempts = ref_attempts(person_events, steps, date_from, date_to, window, order, [])
        best = max((times for times, _ in attempts), key=len, default=None)  # first longest
        if best is None:
            continue
        won = len(best) == len(steps)
        stop = best[-1] if won else best[0] + window
        for e in person_events:  # by time: the first one stays
            if best[0] < e.ts < stop and e.event not in names:
                cells.setdefault((e.event, won), {}).setdefault(person, e.ts)
    return cells


@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=correlation_rows, links=merges, data=st.data())
def test_cells_match_the_reference(
    app: Flask, rows: list[Any], links: list[tuple[int, int]], data: st.DataObject, order: str
) -> None:
    clear_events(app)
    load(app, [(f"d{d}", name, slot(n).isoformat()) for d, name, n, _ in rows])
    with app.app_context():
        for user, anon in links:
            identify(f"d{user}", anon_id=f"d{anon}")
    names = data.draw(st.sampled_from([["a", "b"], ["b", "a"], ["a", "c", "b"]]))
    window = data.draw(st.sampled_from([1, 2, 3, 6])) * GRID
    first = data.draw(st.integers(0, 2))
    start, stop = slot(first), slot(data.draw(st.integers(first + 2, 6)))
    funnel_steps = [FunnelStep(name) for name in names]
    with app.app_context():
        ctx = report_context(date_from=start, date_to=stop)
        found = {}
        for name in sorted({"a", "b", "c", "d", "e"} - set(names)):
            for converted in (True, False):
                source = funnel_correlation_persons(
                    ctx,
                    funnel_steps,
                    event=name,
                    converted=converted,
                    window_seconds=window,
                    order=order,
                )
                page = persons_behind(source, limit=200)
                if page.total:
                    found[(name, converted)] = {
                        p.id: to_micros(datetime.fromisoformat(p.qualified_at or ""))
                        for p in page.persons
                    }
        evs = stored_events()
    expected = ref_cells(
        evs,
        [RefStep(s.event) for s in funnel_steps],
        to_micros(start),
        to_micros(stop),
        window * 1_000_000,
        order,
    )
    target(float(len(expected)))
    assert found == expected
