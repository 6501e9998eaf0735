"""``flask umetrics clickhouse ...``: moving an install's events into ClickHouse, and squashing
the person overrides merges leave."""

from __future__ import annotations

import click

from .cli import umetrics_cli
from .errors import UMetricsError
from .state import current_state


@umetrics_cli.group("clickhouse")
def clickhouse_group() -> None:
    """The ClickHouse event store (UMETRICS_EVENT_STORE=clickhouse)."""


@clickhouse_group.command("backfill")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="SQL events read and stored per batch (one ClickHouse insert each).",
)
@click.option(
    "--max-batches",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many event batches (the next run resumes).",
)
def backfill_command(batch_size: int, max_batches: int | None) -> None:
    """Copy the SQL database's events (and persons, distinct ids) into ClickHouse.

    Resumable (it goes on after the last SQL event id it recorded) and idempotent (events are
    stored once per uuid): run it again until it reports nothing left. See docs/clickhouse.md
    for the switch-over procedure.
    """
    from .engines.clickhouse import upgrade_schema
    from .engines.clickhouse.backfill import BackfillReport, backfill
    from .engines.clickhouse.store import ClickHouseEventStore

    state = current_state()
    store = state.event_store
    if not isinstance(store, ClickHouseEventStore):
        raise click.ClickException(
            "the event store is not ClickHouse: set UMETRICS_EVENT_STORE=clickhouse and "
            "UMETRICS_CLICKHOUSE_URL for the app this command runs (events are copied from its "
            "SQL database into that ClickHouse)"
        )

    def progress(stage: str, report: BackfillReport) -> None:
        if stage == "events":
            click.echo(
                f"  events: up to id {report.last_id:,} of {report.sql_max_id:,}: read "
                f"{report.read:,}, copied {report.copied:,}, already there "
                f"{report.already_there:,}, skipped {report.skipped:,}",
                err=True,
            )
        elif stage == "persons":
            click.echo(f"  persons copied so far: {report.persons_copied:,}", err=True)
        else:
            click.echo(f"  distinct ids copied so far: {report.distinct_ids_copied:,}", err=True)

    try:
        upgrade_schema(store)
        click.echo(f"backfill into {store.url.redacted()} (batches of {batch_size:,})", err=True)
        report = backfill(
            store, state.engine, batch_size=batch_size, max_batches=max_batches, progress=progress
        )
    except UMetricsError as exc:
        raise click.ClickException(str(exc)) from None
    start = f"after id {report.resumed_after:,}" if report.resumed_after else "from the start"
    click.echo(
        f"persons copied {report.persons_copied:,}, distinct ids copied "
        f"{report.distinct_ids_copied:,}; events {start}: read {report.read:,}, copied "
        f"{report.copied:,}, already there {report.already_there:,}, skipped (no person) "
        f"{report.skipped:,}; at id {report.last_id:,} of {report.sql_max_id:,}"
    )
    left = report.sql_max_id - report.last_id
    click.echo("done: every SQL event is copied" if left <= 0 else "not finished: run it again")


@clickhouse_group.command("squash")
@click.option(
    "--min-age",
    type=click.FloatRange(min=0),
    default=600,
    show_default=True,
    help="Seconds an override must be old to be squashed (younger ones wait for the next run).",
)
def squash_command(min_age: float) -> None:
    """Rewrite the events of merged persons to the surviving person and remove their overrides.

    Until then ClickHouse reports read persons through the distinct-id map (the same numbers,
    slower). The scheduler runs this on UMETRICS_CLICKHOUSE_SQUASH_SCHEDULE; see
    docs/clickhouse.md.
    """
    from .engines.clickhouse import upgrade_schema
    from .engines.clickhouse.overrides import squash
    from .engines.clickhouse.store import ClickHouseEventStore

    store = current_state().event_store
    if not isinstance(store, ClickHouseEventStore):
        raise click.ClickException(
            "the event store is not ClickHouse: set UMETRICS_EVENT_STORE=clickhouse and "
            "UMETRICS_CLICKHOUSE_URL for the app this command runs"
        )

    def progress(scope: str, done: int, total: int) -> None:
        click.echo(f"  scope {scope}: {done:,} / {total:,} distinct ids", err=True)

    try:
        upgrade_schema(store)
        result = squash(store, min_age_seconds=min_age, progress=progress)
    except UMetricsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"squashed {result.distinct_ids:,} distinct ids in {result.scopes:,} scopes "
        f"({result.events:,} events rewritten); {result.left:,} overrides younger than "
        f"{min_age:g} s left for the next run"
    )
