"""``flask umetrics ...``: database, stats, snapshots, keys, pruning, the scheduler, config."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from flask.cli import AppGroup, ScriptInfo
from sqlalchemy.exc import SQLAlchemyError

from .auth import PERMISSIONS, list_api_keys, revoke_api_key
from .auth import create_api_key as _create_api_key
from .config import CONFIG_KEYS
from .db import migrate
from .db.errors import describe_database_error
from .errors import UMetricsError
from .pruning import prune
from .state import EXTENSION_KEY, current_state
from .stats import get_latest_stat, get_stat_series, record_stat, run_stat_snapshot


class UMetricsGroup(AppGroup):
    """``flask umetrics``: a database that is unreachable, missing or not migrated is reported
    in one sentence with what to check, not as a SQLAlchemy traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as exc:
            # The command's app context is gone by now: the app comes from Flask's ScriptInfo.
            info = ctx.find_object(ScriptInfo)
            state = info.load_app().extensions.get(EXTENSION_KEY) if info else None
            what = (
                describe_database_error(state.engine, exc)
                if state is not None
                else f"Cannot use the umetrics database: {type(exc).__name__}."
            )
            raise click.ClickException(
                what + " Check UMETRICS_DATABASE_URL (or the db given to init_app), that the "
                "server runs and that the database exists; a missing table means `flask umetrics "
                "db upgrade` has not run. `flask umetrics doctor` lists every gap."
            ) from exc


umetrics_cli = UMetricsGroup("umetrics", help="flask-umetrics: analytics, stats, flags and GA4.")


def _fail(message: str) -> None:
    raise click.ClickException(message)


# -- database -------------------------------------------------------------------------------


@umetrics_cli.group("db")
def db_group() -> None:
    """Create, migrate and inspect the umetrics tables."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the tables (and the ClickHouse schema when events live there)."""
    state = current_state()
    engine = state.engine
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    click.echo(f"umetrics schema: {before or 'empty'} -> {after}")
    if state.settings["UMETRICS_EVENT_STORE"] == "clickhouse":
        from .engines.clickhouse import upgrade_schema

        try:
            old, new = upgrade_schema(state.event_store)
        except UMetricsError as exc:
            _fail(str(exc))
        click.echo(f"umetrics ClickHouse schema: version {old or 'empty'} -> {new}")


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate down to REVISION (``base`` drops every umetrics table)."""
    migrate.downgrade(current_state().engine, revision)
    click.echo(f"umetrics schema now at {migrate.current_revision(current_state().engine)}")


@db_group.command("current")
def db_current() -> None:
    """Print the schema revision of the database and of this release."""
    click.echo(f"database: {migrate.current_revision(current_state().engine) or 'empty'}")
    click.echo(f"release:  {migrate.head_revision()}")


@db_group.command("sql")
@click.option("--dialect", type=click.Choice(["sqlite", "postgresql", "clickhouse"]), required=True)
@click.option("--revision", default="head", show_default=True)
@click.option(
    "--cluster",
    default=None,
    help="clickhouse: render ON CLUSTER replicated tables for this cluster "
    "(default: UMETRICS_CLICKHOUSE_CLUSTER).",
)
def db_sql(dialect: str, revision: str, cluster: str | None) -> None:
    """Print the DDL of the migrations for DIALECT without touching a database."""
    if dialect == "clickhouse":
        from .engines.clickhouse import schema

        if revision != "head":
            _fail("--revision: the ClickHouse schema is printed at its newest version only")
        name = cluster or current_state().settings["UMETRICS_CLICKHOUSE_CLUSTER"]
        click.echo(schema.ddl_script(name), nl=False)
        return
    if cluster is not None:
        _fail("--cluster applies to --dialect clickhouse only")
    click.echo(migrate.sql(dialect, revision), nl=False)


# -- stats ----------------------------------------------------------------------------------


@umetrics_cli.command("snapshot")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="Scope to snapshot (repeatable; default: UMETRICS_SNAPSHOT_SCOPES).",
)
def snapshot(scopes: tuple[str, ...]) -> None:
    """Run every stat collector now; exits 1 if any collector failed."""
    state = current_state()
    failed = 0
    for scope_id in scopes or state.settings.snapshot_scopes:
        result = run_stat_snapshot(scope_id=scope_id, trigger="cli")
        click.echo(f"scope {scope_id}: snapshot {result.id} at {result.captured_at.isoformat()}")
        for item in result.results:
            shown = item.error if item.status == "error" else item.value
            click.echo(f"  {item.key:<32} {item.status:<8} {shown}")
        if not result.results:
            click.echo("  (no collectors registered)")
        failed += len(result.failed)
    if failed:
        click.echo(f"{failed} collector(s) failed", err=True)
        sys.exit(1)


@umetrics_cli.group("stats")
def stats_group() -> None:
    """Read and write stat readings."""


@stats_group.command("record")
@click.argument("metric_key")
@click.argument("value", type=float)
@click.option("--scope", default=None)
def stats_record(metric_key: str, value: float, scope: str | None) -> None:
    """Append a reading of METRIC_KEY."""
    try:
        reading = record_stat(metric_key, value, scope_id=scope, source="cli")
    except UMetricsError as exc:
        _fail(str(exc))
    click.echo(json.dumps(reading.to_dict()))


@stats_group.command("latest")
@click.argument("metric_key")
@click.option("--scope", default=None)
def stats_latest(metric_key: str, scope: str | None) -> None:
    """Print the latest reading of METRIC_KEY as JSON."""
    reading = get_latest_stat(metric_key, scope_id=scope)
    click.echo(json.dumps(reading.to_dict() if reading else None))


@stats_group.command("series")
@click.argument("metric_key")
@click.option("--scope", default=None)
@click.option("--limit", default=30, show_default=True, type=click.IntRange(min=1))
def stats_series(metric_key: str, scope: str | None, limit: int) -> None:
    """Print the most recent readings, oldest first, one JSON object per line."""
    for reading in get_stat_series(metric_key, scope_id=scope, limit=limit):
        click.echo(json.dumps(reading.to_dict()))


# -- keys -----------------------------------------------------------------------------------


@umetrics_cli.group("keys")
def keys_group() -> None:
    """Create, list and revoke API keys."""


@keys_group.command("create")
@click.option("--scope", default=None, help="Scope (default: UMETRICS_DEFAULT_SCOPE).")
@click.option(
    "--permission",
    type=click.Choice(PERMISSIONS),
    required=True,
    help="ingest: write key (events, links of new visitors); identify: also merges and "
    "properties of identified persons (server-side); metrics.view; metrics.manage: all.",
)
@click.option("--name", default="", help="A label to recognise the key by.")
def keys_create(scope: str | None, permission: str, name: str) -> None:
    """Create a key and print it (it cannot be shown again)."""
    try:
        key = _create_api_key(scope, permission, name=name, created_by="cli")
    except UMetricsError as exc:
        _fail(str(exc))
    click.echo(key)


@keys_group.command("list")
@click.option("--scope", default=None, help="Only this scope (default: every scope).")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
def keys_list(scope: str | None, include_revoked: bool) -> None:
    """List keys (never their secrets)."""
    for key in list_api_keys(scope, include_revoked=include_revoked):
        state = "revoked" if key.revoked_at else "active"
        used = key.last_used_at.isoformat() if key.last_used_at else "never"
        click.echo(
            f"{key.key_id}  {key.scope_id:<20} {key.permission:<15} {state:<8} "
            f"last used {used}  {key.name}"
        )


@keys_group.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke the key with KEY_ID."""
    if not revoke_api_key(key_id, actor="cli"):
        _fail(f"no active key {key_id!r}")
    click.echo(f"revoked {key_id}")


# -- lifecycle ------------------------------------------------------------------------------


@umetrics_cli.command("prune")
def prune_command() -> None:
    """Delete rows older than the [retention] ages now."""

    def progress(name: str, total: int) -> None:
        click.echo(f"  {name}: {total} deleted so far", err=True)

    details: dict[str, Any] = {}
    for name, count in prune(progress=progress, details=details).items():
        click.echo(f"{name}: {count} deleted")
    events = details.get("events")
    if events:
        click.echo(
            f"  events (ClickHouse, before {events['cutoff']}): "
            f"{events['rows_in_dropped_partitions']} in dropped partitions "
            f"{', '.join(events['partitions_dropped']) or '(none)'}, "
            f"{events['rows_deleted']} by a lightweight delete"
        )


@umetrics_cli.command("scheduler")
@click.option("--once", is_flag=True, help="Run the jobs due for the current period and exit.")
@click.option(
    "--duration",
    type=float,
    default=None,
    help="Stop after this many seconds (default: run until interrupted).",
)
@click.option(
    "--no-leader",
    is_flag=True,
    hidden=True,
    help="Skip leader election (testing: run records alone prevent double runs).",
)
def scheduler_command(once: bool, duration: float | None, no_leader: bool) -> None:
    """Run the scheduled jobs in this process (the recommended production set-up)."""
    from flask import current_app

    from .scheduler.runner import SchedulerRunner

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    runner = SchedulerRunner(app, use_leader=not no_leader)
    if once:
        for key, outcome in runner.run_due().items():
            click.echo(f"{key}: {outcome}")
        runner.shutdown()
        return
    if not runner.jobs:
        _fail("no jobs are configured (both schedules are 'off')")
    runner.start()
    click.echo(
        f"scheduler {runner.owner} running: "
        + ", ".join(f"{job.key} [{job.schedule.spec}]" for job in runner.jobs)
    )
    started = time.monotonic()
    try:
        while duration is None or time.monotonic() - started < duration:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        runner.shutdown()
        click.echo("scheduler stopped")


@umetrics_cli.command("config")
def config_command() -> None:
    """Print every UMETRICS_* setting as this app resolved it."""
    settings = current_state().settings
    for key in CONFIG_KEYS:
        value = settings[key.name]
        if key.name == "UMETRICS_DATABASE_URL" and value:
            from sqlalchemy.engine import make_url

            value = make_url(value).render_as_string(hide_password=True)
        if key.name == "UMETRICS_CLICKHOUSE_URL" and value:
            from .engines.clickhouse.client import parse_clickhouse_url

            try:
                value = parse_clickhouse_url(value).redacted()
            except UMetricsError:
                value = "(invalid; not shown)"
        click.echo(f"{key.name} = {value!r}")


# Registers the event, flag and experiment commands on umetrics_cli.
from . import (  # noqa: E402, F401
    cli_annotations,
    cli_clickhouse,
    cli_doctor,
    cli_events,
    cli_flags,
    cli_ga4,
    cli_insights,
)
