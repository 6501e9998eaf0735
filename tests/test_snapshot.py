"""Snapshots: collectors share one captured_at; a failing collector is recorded, not fatal."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from flask import Flask
from sqlalchemy import select

from flask_umetrics import UMetrics, ValidationError, get_latest_stat, run_stat_snapshot
from flask_umetrics.db.tables import collector_runs, snapshot_runs, stat_readings
from flask_umetrics.state import current_state

from .conftest import AppFactory


def boom(scope_id: str) -> float:
    raise RuntimeError(f"upstream down for {scope_id}")


@pytest.fixture
def extension() -> UMetrics:
    extension = UMetrics()
    extension.register_stat_collector("users", lambda scope: 42, format="integer")
    extension.register_stat_collector("broken", boom, label="Broken one")
    extension.register_stat_collector("mrr", lambda scope: 1234.5, format="currency:USD")
    extension.register_stat_collector("not_yet", lambda scope: None)
    extension.register_stat_collector("text", lambda scope: "seven")  # type: ignore[arg-type, return-value]
    return extension


def test_a_failing_collector_does_not_stop_the_others(
    make_app: AppFactory, extension: UMetrics
) -> None:
    app = make_app(extension)
    when = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    with app.app_context():
        result = run_stat_snapshot(scope_id="acme", captured_at=when, trigger="test")
        assert [(r.key, r.status, r.value) for r in result.results] == [
            ("users", "ok", 42.0),
            ("broken", "error", None),
            ("mrr", "ok", 1234.5),
            ("not_yet", "skipped", None),
            ("text", "error", None),
        ]
        assert result.results[1].error == "RuntimeError: upstream down for acme"
        assert "must be a number" in (result.results[4].error or "")
        engine = current_state().engine
        with engine.connect() as connection:
            readings = connection.execute(
                select(
                    stat_readings.c.metric_key,
                    stat_readings.c.value,
                    stat_readings.c.captured_at,
                    stat_readings.c.snapshot_id,
                ).order_by(stat_readings.c.metric_key)
            ).all()
            run = connection.execute(select(snapshot_runs)).one()
            recorded = connection.execute(
                select(
                    collector_runs.c.collector_key, collector_runs.c.status, collector_runs.c.error
                ).order_by(collector_runs.c.id)
            ).all()
        assert readings == [("mrr", 1234.5, when, result.id), ("users", 42.0, when, result.id)]
        assert (run.scope_id, run.trigger, run.collectors_ok, run.collectors_failed) == (
            "acme",
            "test",
            2,
            2,
        )
        assert run.captured_at == when
        assert recorded[1] == ("broken", "error", "RuntimeError: upstream down for acme")
        assert [row.status for row in recorded] == ["ok", "error", "ok", "skipped", "error"]
        assert get_latest_stat("users", scope_id="acme").value == 42.0  # type: ignore[union-attr]


def test_snapshot_over_rest_reports_failures(make_app: AppFactory, extension: UMetrics) -> None:
    extension.authorizer(lambda permission, scope_id: True)
    client = make_app(extension).test_client()
    response = client.post("/umetrics/api/stats/snapshots", json={"scope_id": "acme"})
    assert response.status_code == 201
    assert (response.json["collectors_ok"], response.json["collectors_failed"]) == (2, 2)
    overview = client.get("/umetrics/api/stats?scope_id=acme").json
    by_key = {c["key"]: c for c in overview["collectors"]}
    assert by_key["users"]["latest"]["value"] == 42.0
    assert by_key["broken"]["latest"] is None
    assert by_key["broken"]["last_run"]["status"] == "error"
    assert by_key["broken"]["last_run"]["error"] == "RuntimeError: upstream down for acme"
    assert by_key["broken"]["label"] == "Broken one"
    assert by_key["mrr"]["format"] == "currency:USD"
    history = client.get("/umetrics/api/stats/snapshots?scope_id=acme").json["snapshots"]
    assert len(history) == 1 and len(history[0]["results"]) == 5


def test_collector_registration_is_validated() -> None:
    extension = UMetrics()
    extension.register_stat_collector("a", lambda scope: 1)
    with pytest.raises(ValidationError, match="already registered"):
        extension.register_stat_collector("a", lambda scope: 1)
    with pytest.raises(ValidationError) as error:
        extension.register_stat_collector("b", lambda scope: 1, format="euros")
    assert error.value.field == "format"
    with pytest.raises(ValidationError):
        extension.register_stat_collector("bad key", lambda scope: 1)


def test_count_format_is_the_hazo_spelling_of_integer(
    make_app: AppFactory, extension: UMetrics
) -> None:
    """hazo_umetrics registers counters with ``format="count"``: accepted, stored as integer."""
    extension.authorizer(lambda permission, scope_id: True)
    counted = extension.register_stat_collector("signups", lambda scope: 7, format="count")
    assert counted.format == "integer"

    @extension.stat_collector("orders", label="Orders", format="count")
    def orders(scope_id: str) -> int:
        return 3

    client = make_app(extension).test_client()
    overview = client.get("/umetrics/api/stats?scope_id=acme").json
    formats = {c["key"]: c["format"] for c in overview["collectors"]}
    assert formats["signups"] == formats["orders"] == "integer"
    with pytest.raises(ValidationError) as error:
        extension.register_stat_collector("c", lambda scope: 1, format="counts")
    assert error.value.field == "format"


def test_app_level_collectors_stay_in_their_app(make_app: AppFactory) -> None:
    from flask_umetrics import register_stat_collector

    shared = UMetrics()

    @shared.stat_collector("everywhere", label="Everywhere", format="integer")
    def everywhere(scope_id: str) -> int:
        return 1

    first, second = make_app(shared), make_app(shared)
    with first.app_context():
        register_stat_collector("only_first", lambda scope: 2)
    with first.app_context():
        assert [c.key for c in current_state().collectors] == ["everywhere", "only_first"]
    with second.app_context():
        assert [c.key for c in current_state().collectors] == ["everywhere"]


def test_snapshot_with_no_collectors_still_records_a_run(app: Flask) -> None:
    with app.app_context():
        result = run_stat_snapshot()
        assert result.results == [] and result.scope_id == "default"
        with current_state().engine.connect() as connection:
            assert connection.execute(select(snapshot_runs.c.collectors_ok)).scalar_one() == 0
