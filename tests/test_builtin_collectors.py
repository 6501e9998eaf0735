"""Built-in collectors (events.dau, .wau, .mau, .events_today, .new_persons_today) with a frozen
"today" in Europe/Berlin (UTC+1 in early March), on data whose answers are known."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_umetrics import get_latest_stat, identify, run_stat_snapshot
from flask_umetrics.events import collectors
from flask_umetrics.events.collectors import register_builtin_collectors

from .conftest import AppFactory
from .events_data import at, load

pytestmark = pytest.mark.event_stores

#: 2026-03-10 13:00 in Berlin; "today" is [2026-03-09T23:00Z, 2026-03-10T23:00Z).
NOW = at("2026-03-10T12:00:00")

ROWS = [
    ("a", "view", "2026-03-10T08:00:00"),  # today, twice
    ("a", "click", "2026-03-10T08:00:01"),
    ("b", "view", "2026-03-09T23:00:00"),  # 00:00 Berlin: the first instant of today
    ("b", "view", "2026-03-01T10:00:00"),  # ... so b is not new today
    ("c", "view", "2026-03-09T22:59:59.999999"),  # 23:59 Berlin yesterday: WAU, not DAU
    ("d", "server", "2026-03-10T09:00:00", None, False),  # inactive: counted, never active
    ("e", "view", "2026-03-03T23:00:00"),  # 4 March 00:00 Berlin: first day of the week
    ("f", "view", "2026-03-03T22:59:59"),  # 3 March Berlin: MAU only
    ("g", "view", "2026-02-08T23:00:00"),  # 9 February 00:00 Berlin: first day of the 30
    ("h", "view", "2026-02-08T22:59:59"),  # 8 February Berlin: outside every window
    ("anon-x", "view", "2026-03-05T10:00:00"),  # merged into user-x after the events
    ("user-x", "view", "2026-03-10T10:00:00"),
    ("anon-y", "view", "2026-03-10T10:00:00"),  # both of y's ids are new today
    ("user-y", "view", "2026-03-10T11:00:00"),
    ("i", "view", "2026-03-10T23:00:00"),  # tomorrow in Berlin
]
EXPECTED = {
    "events.dau": 4.0,  # a, b, x, y
    "events.wau": 6.0,  # + c, e
    "events.mau": 8.0,  # + f, g
    "events.events_today": 7.0,  # a a b d user-x anon-y user-y
    "events.new_persons_today": 3.0,  # a, d, y
}


@pytest.fixture
def app(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setattr(collectors, "current_time", lambda: NOW)
    app = make_app(UMETRICS_TIMEZONE="Europe/Berlin")
    load(app, ROWS, scope_id="shop")
    load(app, [("a", "view", "2026-03-10T08:00:00")], scope_id="other")
    with app.app_context():
        identify("user-x", anon_id="anon-x", scope_id="shop")
        identify("user-y", anon_id="anon-y", scope_id="shop")
    return app


def test_each_collector_on_known_data(app: Flask) -> None:
    with app.app_context():
        values = {
            f"events.{item.name}": item.collect("shop") for item in collectors.BUILTIN_COLLECTORS
        }
        assert values == EXPECTED
        assert collectors.dau("other") == 1.0 and collectors.new_persons_today("other") == 1.0
        assert collectors.mau("empty") == 0.0 and collectors.events_today("empty") == 0.0


def test_registered_collectors_feed_a_snapshot(app: Flask) -> None:
    registry = app.extensions["umetrics"].collectors
    registered = register_builtin_collectors(registry)
    assert [(c.key, c.format) for c in registered] == [(key, "integer") for key in EXPECTED]
    assert registry.get("events.dau").label == "Daily active users"  # type: ignore[union-attr]
    with app.app_context():
        result = run_stat_snapshot(scope_id="shop")
        assert result.failed == []
        assert {r.key: r.value for r in result.results} == EXPECTED
        assert get_latest_stat("events.wau", scope_id="shop").value == 6.0  # type: ignore[union-attr]


def test_today_moves_with_the_clock(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collectors, "current_time", lambda: at("2026-03-10T23:00:00"))
    with app.app_context():  # 11 March in Berlin: only i is active, and i is new
        assert collectors.dau("shop") == 1.0
        assert collectors.events_today("shop") == 1.0
        assert collectors.new_persons_today("shop") == 1.0
        assert collectors.wau("shop") == 6.0  # 5..11 March: a, b, c, i, x, y; e fell out
