"""``flask umetrics ...`` commands, run through Flask's CLI runner."""

from __future__ import annotations

import json

from flask import Flask

from flask_umetrics import UMetrics, get_stat_series, list_api_keys
from flask_umetrics.db import migrate

from .conftest import AppFactory


def test_db_commands(app: Flask) -> None:
    runner = app.test_cli_runner()
    current = runner.invoke(args=["umetrics", "db", "current"])
    assert current.exit_code == 0
    assert f"database: {migrate.head_revision()}" in current.output
    down = runner.invoke(args=["umetrics", "db", "downgrade", "base"])
    assert down.exit_code == 0 and "now at None" in down.output
    up = runner.invoke(args=["umetrics", "db", "upgrade"])
    assert up.exit_code == 0 and f"empty -> {migrate.head_revision()}" in up.output
    sql = runner.invoke(args=["umetrics", "db", "sql", "--dialect", "postgresql"])
    assert sql.exit_code == 0 and "CREATE TABLE umetrics_stat_readings" in sql.output
    bad = runner.invoke(args=["umetrics", "db", "sql", "--dialect", "oracle"])
    assert bad.exit_code == 2


def test_snapshot_command_reports_and_fails_on_collector_errors(make_app: AppFactory) -> None:
    extension = UMetrics()
    extension.register_stat_collector("ok", lambda scope: 3)
    app = make_app(extension, UMETRICS_SNAPSHOT_SCOPES="a,b")
    result = app.test_cli_runner().invoke(args=["umetrics", "snapshot"])
    assert result.exit_code == 0, result.output
    assert "scope a: snapshot 1" in result.output and "scope b: snapshot 2" in result.output

    def fails(scope: str) -> float:
        raise ValueError("nope")

    extension.register_stat_collector("bad", fails)
    result = app.test_cli_runner().invoke(args=["umetrics", "snapshot", "--scope", "c"])
    assert result.exit_code == 1
    assert "ValueError: nope" in result.output and "1 collector(s) failed" in result.output
    with app.app_context():
        assert [r.value for r in get_stat_series("ok", scope_id="c")] == [3.0]


def test_stats_commands(app: Flask) -> None:
    runner = app.test_cli_runner()
    recorded = runner.invoke(args=["umetrics", "stats", "record", "mrr", "12.5", "--scope", "s"])
    assert recorded.exit_code == 0 and json.loads(recorded.output)["source"] == "cli"
    runner.invoke(args=["umetrics", "stats", "record", "mrr", "13", "--scope", "s"])
    latest = runner.invoke(args=["umetrics", "stats", "latest", "mrr", "--scope", "s"])
    assert json.loads(latest.output)["value"] == 13.0
    series = runner.invoke(args=["umetrics", "stats", "series", "mrr", "--scope", "s"])
    assert [json.loads(line)["value"] for line in series.output.splitlines()] == [12.5, 13.0]
    bad = runner.invoke(args=["umetrics", "stats", "record", "bad key", "1"])
    assert bad.exit_code == 1 and "metric_key" in bad.output


def test_keys_commands(app: Flask) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=[
            "umetrics",
            "keys",
            "create",
            "--scope",
            "s",
            "--permission",
            "metrics.view",
            "--name",
            "grafana",
        ]
    )
    assert created.exit_code == 0
    key = created.output.strip()
    key_id = key.split("_")[1]
    listed = runner.invoke(args=["umetrics", "keys", "list"])
    assert key_id in listed.output and "grafana" in listed.output and key not in listed.output
    assert runner.invoke(args=["umetrics", "keys", "revoke", key_id]).exit_code == 0
    again = runner.invoke(args=["umetrics", "keys", "revoke", key_id])
    assert again.exit_code == 1 and "no active key" in again.output
    with app.app_context():
        [info] = list_api_keys("s", include_revoked=True)
        assert info.created_by == "cli" and info.revoked_at is not None
    wrong = runner.invoke(args=["umetrics", "keys", "create", "--permission", "admin"])
    assert wrong.exit_code == 2


def test_scheduler_once_and_prune(make_app: AppFactory) -> None:
    extension = UMetrics()
    extension.register_stat_collector("n", lambda scope: 1)
    app = make_app(extension)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["umetrics", "scheduler", "--once"])
    assert first.exit_code == 0
    assert "snapshot:default: ran" in first.output and "prune: ran" in first.output
    second = runner.invoke(args=["umetrics", "scheduler", "--once"])
    assert "snapshot:default: already_claimed" in second.output
    pruned = runner.invoke(args=["umetrics", "prune"])
    assert pruned.exit_code == 0 and "stat_readings: 0 deleted" in pruned.output


def test_config_command_hides_passwords(make_app: AppFactory) -> None:
    app = make_app()
    app.extensions["umetrics"].settings.values["UMETRICS_DATABASE_URL"] = (
        "postgresql://user:s3cret@db/umetrics"
    )
    output = app.test_cli_runner().invoke(args=["umetrics", "config"]).output
    assert "s3cret" not in output and "UMETRICS_TIMEZONE = 'UTC'" in output
