"""What ClickHouse reports add to the store's promises: a duplicate that slipped past the write
look-up (two processes inserting one uuid at the same instant) is read once, and property text
is the SQL path's (numbers, booleans, strings, null, missing)."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_umetrics import UMetrics
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.top import top_property_values
from flask_umetrics.queries.trends import volume
from flask_umetrics.state import current_state

from .conftest import AppFactory, allow_all
from .events_data import at, load


@pytest.fixture
def app(make_clickhouse_app: AppFactory) -> Flask:
    extension = UMetrics()
    allow_all(extension)
    return make_clickhouse_app(extension)


def test_a_duplicate_row_of_one_uuid_is_counted_once(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a server (several writing processes) reports read each uuid once; the test suite's
    chdb is told to read as a server does."""
    from flask_umetrics.engines.clickhouse import expressions

    with app.app_context():
        assert expressions.reads_deduplicate() is False  # chdb: one process, no duplicate
    monkeypatch.setattr(expressions, "reads_deduplicate", lambda: True)
    load(app, [("a", "view", "2026-03-01T10:00:00"), ("b", "view", "2026-03-01T11:00:00")])
    with app.app_context():
        client = current_state().event_store.client  # type: ignore[attr-defined]
        # What a second process racing the first would have written: the same uuid again.
        client.command(
            "INSERT INTO umetrics_events (scope_id, uuid, event, distinct_id, ts, session_id, "
            "active, properties, seq) SELECT scope_id, uuid, event, distinct_id, ts, session_id, "
            "active, properties, seq + 1 FROM umetrics_events WHERE distinct_id = 'a'"
        )
        assert client.query("SELECT count() FROM umetrics_events").result_rows[0][0] == 3
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-02"))
        assert [p.count for p in volume(ctx).series] == [2]


def test_property_text_matches_the_sql_path(app: Flask) -> None:
    values = [5, 5.5, True, False, "pro", None]
    load(
        app,
        [("a", "e", f"2026-03-01T10:0{i}:00", {"v": v}) for i, v in enumerate(values)]
        + [("a", "e", "2026-03-01T11:00:00", {"other": 1})],
    )
    with app.app_context():
        ctx = report_context(date_from=at("2026-03-01"), date_to=at("2026-03-02"))
        found = top_property_values(ctx, event="e", property="v", limit=20)
    # JSON null and a missing key are left out; the rest is the value's JSON text.
    assert sorted(item.key for item in found.items) == sorted(["5", "5.5", "true", "false", "pro"])
