"""The persons behind a lifecycle bar and a stickiness bar: each list equal to the bar's count,
and to the persons known by construction, on every event store."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.lifecycle import lifecycle, lifecycle_persons
from flask_umetrics.queries.persons import persons_behind
from flask_umetrics.queries.stickiness import stickiness, stickiness_persons

from .conftest import AppFactory
from .events_data import load
from .reference_lifecycle import LINKS, ROWS, draw_report, load_drawn
from .test_lifecycle import DAILY
from .test_persons_behind import PREFIX, _client, _ids
from .test_stickiness import EVENTS

pytestmark = pytest.mark.event_stores

RANGE = "date_from=2026-03-02&date_to=2026-03-06"
STATUSES = ("new", "returning", "resurrecting", "dormant")


def _bar(client: FlaskClient, query: str, time: str, status: str) -> list[str]:
    url = f"{PREFIX}/lifecycle/persons?{query}&{urlencode({'time': time, 'status': status})}"
    return sorted(_ids(client, url))


def test_every_lifecycle_bar_lists_its_count(make_app: AppFactory) -> None:
    app, client = _client(make_app)
    load(app, DAILY)
    for extra in ["", "&event=view", "&interval=week"]:
        query = RANGE + extra
        for period in client.get(f"{PREFIX}/lifecycle?{query}").json["periods"]:
            for status in STATUSES:
                listed = _bar(client, query, period["time"], status)
                assert len(listed) == period[status], (extra, period["time"], status)
    # Known by construction (see test_lifecycle.DAILY).
    day = "2026-03-02T00:00:00+00:00"
    assert [_bar(client, RANGE, day, s) for s in STATUSES] == [["a"], ["b"], ["e"], ["d"]]
    third = "2026-03-03T00:00:00+00:00"
    assert _bar(client, RANGE, third, "dormant") == ["b", "e"]
    body = client.get(
        f"{PREFIX}/lifecycle/persons?{RANGE}&{urlencode({'time': third, 'status': 'dormant'})}"
    ).json
    assert {p["qualified_at"] for p in body["persons"]} == {third}


def test_every_stickiness_bar_lists_its_count(make_app: AppFactory) -> None:
    app, client = _client(make_app)
    load(app, EVENTS)
    for extra in ["", "&event=email_sent", "&interval=week&date_to=2026-03-16"]:
        query = RANGE + extra
        report = client.get(f"{PREFIX}/stickiness?{query}").json
        for bar in report["bars"]:
            url = f"{PREFIX}/stickiness/persons?{query}&periods={bar['periods']}"
            assert len(_ids(client, url)) == bar["persons"], (extra, bar)
    listed = [_ids(client, f"{PREFIX}/stickiness/persons?{RANGE}&periods={n}") for n in (1, 3, 4)]
    assert listed == [["b"], ["a"], ["c"]]
    body = client.get(f"{PREFIX}/stickiness/persons?{RANGE}&periods=3").json
    assert body["persons"][0]["qualified_at"] == "2026-03-02T00:00:00+00:00"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=ROWS, links=LINKS, data=st.data())
def test_every_bar_lists_its_count_on_drawn_data(
    berlin_app: Flask, rows: list[Any], links: list[tuple[int, int]], data: st.DataObject
) -> None:
    """Drawn events, merges, periods and ranges (the lifecycle hypothesis test's): each lifecycle
    and stickiness bar's persons are as many as the bar counts."""
    load_drawn(berlin_app, rows, links)
    period, date_from, date_to, event = draw_report(data)
    with berlin_app.app_context():
        ctx = report_context(date_from=date_from, date_to=date_to)
        for p in lifecycle(ctx, event=event, interval=period).periods:
            for status in STATUSES:
                source = lifecycle_persons(
                    ctx, time=p.time, status=status, event=event, interval=period
                )
                assert persons_behind(source, limit=200).total == getattr(p, status), (p, status)
        for bar in stickiness(ctx, event=event, interval=period).bars:
            source = stickiness_persons(ctx, periods=bar.periods, event=event, interval=period)
            assert persons_behind(source, limit=200).total == bar.persons, bar
