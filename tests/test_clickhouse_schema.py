"""The ClickHouse schema: versioned, idempotent upgrades, the DDL `db sql` prints, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from flask_umetrics.engines.clickhouse import schema
from flask_umetrics.engines.clickhouse.client import get_client, parse_clickhouse_url

from .conftest import AppFactory

TABLES = {
    "umetrics_clickhouse_versions": "MergeTree",
    "umetrics_events": "MergeTree",
    "umetrics_person_distinct_ids": "ReplacingMergeTree",
    "umetrics_persons": "ReplacingMergeTree",
    "umetrics_backfill_progress": "ReplacingMergeTree",
    "umetrics_person_overrides": "ReplacingMergeTree",
}


def tables(url: str, database: str | None = None) -> dict[str, str]:
    client = get_client(parse_clickhouse_url(url))
    rows = client.query(
        "SELECT name, engine FROM system.tables WHERE database = {db:String} "
        "AND startsWith(name, 'umetrics_')",
        parameters={"db": database or client.database or "default"},
    ).result_rows
    return dict(rows)


def test_upgrade_creates_the_schema_once_and_records_its_version(clickhouse_url: str) -> None:
    client = get_client(parse_clickhouse_url(clickhouse_url))
    assert schema.current_version(client) == 0
    assert schema.upgrade(client) == (0, schema.HEAD)
    assert schema.HEAD == 4
    assert tables(clickhouse_url) == TABLES
    assert schema.upgrade(client) == (4, 4)  # idempotent: nothing applied twice
    rows = client.query(
        f"SELECT version, description FROM {schema.VERSION_TABLE} ORDER BY version"
    ).result_rows
    assert rows == [
        (1, "events, person distinct ids, persons"),
        (2, "backfill progress"),
        (3, "events projection sorted by event"),
        (4, "events carry person_id; person overrides"),
    ]


def test_an_interrupted_upgrade_is_finished_by_the_next(clickhouse_url: str) -> None:
    """Tables created but the version not recorded (a crash in between): upgrading again
    succeeds (every statement is IF NOT EXISTS) and records the version once."""
    client = get_client(parse_clickhouse_url(clickhouse_url))
    layout = schema.Layout()
    for statement in schema._version_table(layout) + schema._initial_tables(layout)[:2]:
        client.command(statement)
    assert schema.upgrade(client) == (0, 4)
    assert tables(clickhouse_url) == TABLES
    count = client.query(f"SELECT count() FROM {schema.VERSION_TABLE}").result_rows[0][0]
    assert count == 4


def test_events_table_keeps_microseconds_and_orders_for_reports(clickhouse_url: str) -> None:
    client = get_client(parse_clickhouse_url(clickhouse_url))
    schema.upgrade(client)
    row = client.query(
        "SELECT sorting_key, partition_key FROM system.tables "
        "WHERE database = currentDatabase() AND name = 'umetrics_events'"
    ).result_rows[0]
    assert row == (
        "scope_id, toDate(ts), event, cityHash64(distinct_id), ts, seq",
        "toYYYYMM(ts)",
    )
    ts_type = client.query(
        "SELECT type FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'umetrics_events' AND name = 'ts'"
    ).result_rows[0][0]
    assert ts_type == "DateTime64(6, 'UTC')"


def test_upgrade_to_3_projects_existing_events_and_deletes_still_work(
    clickhouse_url: str,
) -> None:
    """Events stored at version 2 get the projection sorted by event; a read filtered on
    event names uses it (same rows as the table), and a lightweight delete (privacy,
    retention) still runs and hides the rows from both."""
    client = get_client(parse_clickhouse_url(clickhouse_url))
    layout = schema.Layout()
    for statement in schema._version_table(layout):
        client.command(statement)
    for migration in schema.MIGRATIONS[:2]:
        for statement in [*migration.statements(layout), schema._record(migration)]:
            client.command(statement)
    assert schema.current_version(client) == 2
    client.command(
        "INSERT INTO umetrics_events (scope_id, uuid, event, distinct_id, ts, active, properties, "
        "seq) SELECT 's', toString(number), ['a', 'b', 'c'][number % 3 + 1], "
        "toString(number % 7), toDateTime64('2026-01-01', 6, 'UTC') + number, 1, '{}', number "
        "FROM numbers(300)"
    )
    assert schema.upgrade(client) == (2, 4)
    client.command(
        f"ALTER TABLE {layout.events_table} MATERIALIZE PROJECTION {schema.EVENTS_BY_EVENT}",
        settings={"mutations_sync": 2},
    )
    projected = client.query(
        "SELECT count() FROM system.projection_parts WHERE database = currentDatabase() "
        "AND table = 'umetrics_events' AND name = {name:String} AND active",
        parameters={"name": schema.EVENTS_BY_EVENT},
    ).result_rows[0][0]
    assert projected >= 1
    read = "SELECT count(), sum(seq) FROM umetrics_events WHERE scope_id = 's' AND event = 'b'"
    assert client.query(read).result_rows == [(100, sum(range(1, 300, 3)))]
    plan = "\n".join(r[0] for r in client.query("EXPLAIN projections = 1 " + read).result_rows)
    assert schema.EVENTS_BY_EVENT in plan
    client.command(
        "DELETE FROM umetrics_events WHERE distinct_id = '1'",
        settings={"lightweight_deletes_sync": 2},
    )
    kept = [n for n in range(1, 300, 3) if n % 7 != 1]
    assert client.query(read).result_rows == [(len(kept), sum(kept))]
    unprojected = client.query(read, settings={"optimize_use_projections": 0}).result_rows
    assert unprojected == [(len(kept), sum(kept))]


def _run_script(url: str, database: str, script: str) -> None:
    """Run a `db sql` script statement by statement in ``database`` of the test ClickHouse."""
    import clickhouse_connect

    parsed = parse_clickhouse_url(url)
    client = get_client(parsed)
    client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
    client.command(f"CREATE DATABASE {database}")
    other = clickhouse_connect.get_client(**{**parsed.client_arguments(), "database": database})
    try:
        for statement in script.split(";\n"):
            if statement.strip():
                other.command(statement)
    finally:
        other.close()


def test_db_sql_prints_ddl_that_builds_the_schema(
    make_clickhouse_app: AppFactory, clickhouse_url: str
) -> None:
    app = make_clickhouse_app()
    result = app.test_cli_runner().invoke(args=["umetrics", "db", "sql", "--dialect", "clickhouse"])
    assert result.exit_code == 0, result.output
    assert "ON CLUSTER" not in result.output
    assert "non_replicated_deduplication_window = 1000" in result.output
    _run_script(clickhouse_url, "umetrics_ddl_check", result.output)
    assert tables(clickhouse_url, "umetrics_ddl_check") == TABLES
    client = get_client(parse_clickhouse_url(clickhouse_url))
    versions = client.query(
        f"SELECT version FROM umetrics_ddl_check.{schema.VERSION_TABLE}"
    ).result_rows
    assert sorted(versions) == [(m.version,) for m in schema.MIGRATIONS]
    client.command("DROP DATABASE umetrics_ddl_check SYNC")


def test_db_sql_renders_the_cluster_variant(
    make_clickhouse_app: AppFactory, tmp_path: Path
) -> None:
    """It cannot run without a cluster; what it must say is checked statement by statement."""
    app = make_clickhouse_app()
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["umetrics", "db", "sql", "--dialect", "clickhouse", "--cluster", "analytics"]
    )
    assert result.exit_code == 0, result.output
    statements = [s for s in result.output.split(";\n") if s.strip()]
    creates = [s for s in statements if s.strip().startswith("CREATE TABLE")]
    assert len(creates) == 7
    assert all(" ON CLUSTER `analytics` " in s for s in creates)
    local = next(s for s in creates if "umetrics_events_local ON CLUSTER" in s)
    assert (
        "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in local
    )
    assert "non_replicated_deduplication_window" not in result.output
    distributed = next(s for s in creates if "ENGINE = Distributed" in s)
    assert distributed.strip().startswith(
        "CREATE TABLE IF NOT EXISTS umetrics_events ON CLUSTER `analytics` AS umetrics_events_local"
    )
    assert (
        "Distributed(`analytics`, currentDatabase(), umetrics_events_local, "
        "cityHash64(distinct_id))" in distributed
    )
    persons = next(s for s in creates if "umetrics_persons ON CLUSTER" in s)
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/noshard/{database}/{table}', "
        "'{replica}-{shard}', version)" in persons
    )
    assert statements[-1].strip().startswith("INSERT INTO umetrics_clickhouse_versions")
    alters = [s.strip() for s in statements if s.strip().startswith("ALTER TABLE")]
    assert alters == [
        "ALTER TABLE umetrics_events_local ON CLUSTER `analytics` MODIFY SETTING "
        "lightweight_mutation_projection_mode = 'rebuild'",
        "ALTER TABLE umetrics_events_local ON CLUSTER `analytics` ADD PROJECTION IF NOT EXISTS "
        "events_by_event (SELECT scope_id, event, ts, seq, distinct_id "
        "ORDER BY (scope_id, event, ts, seq))",
        "ALTER TABLE umetrics_events_local ON CLUSTER `analytics` MATERIALIZE PROJECTION "
        "events_by_event",
        "ALTER TABLE umetrics_events_local ON CLUSTER `analytics` ADD COLUMN IF NOT EXISTS "
        "person_id Int64 DEFAULT 0 AFTER distinct_id",
        "ALTER TABLE umetrics_events ON CLUSTER `analytics` ADD COLUMN IF NOT EXISTS "
        "person_id Int64 DEFAULT 0 AFTER distinct_id",
        "ALTER TABLE umetrics_events_local ON CLUSTER `analytics` DROP PROJECTION IF EXISTS "
        "events_by_event",
        "ALTER TABLE umetrics_events_local ON CLUSTER `analytics` ADD PROJECTION IF NOT EXISTS "
        "events_by_event (SELECT scope_id, event, ts, seq, distinct_id, person_id "
        "ORDER BY (scope_id, event, ts, seq))",
        "ALTER TABLE umetrics_events_local ON CLUSTER `analytics` MATERIALIZE PROJECTION "
        "events_by_event",
    ]
    overrides = next(s for s in creates if "umetrics_person_overrides ON CLUSTER" in s)
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/noshard/{database}/{table}', "
        "'{replica}-{shard}', version)" in overrides
    )
    # The setting is the default (no ClickHouse needed to print): the same text without --cluster.
    from flask_umetrics import UMetrics

    configured = Flask("printing", instance_path=str(tmp_path))
    configured.config.update(
        UMETRICS_DATABASE_URL=f"sqlite:///{tmp_path / 'u.db'}",
        UMETRICS_CLICKHOUSE_CLUSTER="analytics",
    )
    UMetrics(configured)
    again = configured.test_cli_runner().invoke(
        args=["umetrics", "db", "sql", "--dialect", "clickhouse"]
    )
    assert again.output == result.output
    configured.extensions["umetrics"].engine.dispose()


def test_db_upgrade_brings_clickhouse_to_its_version(
    make_clickhouse_app: AppFactory, clickhouse_url: str
) -> None:
    app = make_clickhouse_app()  # the fixture migrated it: start over from nothing
    from .conftest import drop_clickhouse_tables

    drop_clickhouse_tables(clickhouse_url)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["umetrics", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "umetrics ClickHouse schema: version empty -> 4" in result.output
    assert tables(clickhouse_url) == TABLES
    again = runner.invoke(args=["umetrics", "db", "upgrade"])
    assert "umetrics ClickHouse schema: version 4 -> 4" in again.output


def test_auto_migrate_upgrades_clickhouse_too(clickhouse_url: str, tmp_path: Path) -> None:
    from flask_umetrics import UMetrics

    app = Flask("auto", instance_path=str(tmp_path))
    app.config.update(
        UMETRICS_DATABASE_URL=f"sqlite:///{tmp_path / 'u.db'}",
        UMETRICS_AUTO_MIGRATE=True,
        UMETRICS_EVENT_STORE="clickhouse",
        UMETRICS_CLICKHOUSE_URL=clickhouse_url,
    )
    UMetrics(app)
    assert tables(clickhouse_url) == TABLES
    app.extensions["umetrics"].engine.dispose()


def test_sql_dialects_refuse_a_cluster(make_clickhouse_app: AppFactory) -> None:
    app = make_clickhouse_app()
    result = app.test_cli_runner().invoke(
        args=["umetrics", "db", "sql", "--dialect", "sqlite", "--cluster", "x"]
    )
    assert result.exit_code == 1
    assert "--cluster applies to --dialect clickhouse only" in result.output


@pytest.mark.parametrize("name", ["bad name", "a;DROP", "`x`"])
def test_a_bad_cluster_name_stops_start_up(name: str) -> None:
    from flask_umetrics.config import resolve_config
    from flask_umetrics.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="UMETRICS_CLICKHOUSE_CLUSTER"):
        resolve_config({"UMETRICS_CLICKHOUSE_CLUSTER": name}, environ={})
