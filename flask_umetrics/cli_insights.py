"""``flask umetrics insights ...`` and ``flask umetrics dashboards ...``: list them, and move a
scope's insights and dashboards between apps as one JSON document."""

from __future__ import annotations

import json
import sys
from typing import IO

import click

from .cli import umetrics_cli
from .errors import UMetricsError
from .insights import export_insights, import_insights, list_dashboards, list_insights

SCOPE_HELP = "Scope (default: UMETRICS_DEFAULT_SCOPE)."


@umetrics_cli.group("insights")
def insights_group() -> None:
    """Saved insights (report queries)."""


@insights_group.command("list")
@click.option("--scope", default=None, help=SCOPE_HELP)
def insights_list(scope: str | None) -> None:
    """One line per insight: id, kind, name."""
    for insight in list_insights(scope_id=scope):
        click.echo(f"{insight.id}\t{insight.kind}\t{insight.name}")


@insights_group.command("export")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="Default: stdout.")
@click.option("--scope", default=None, help=SCOPE_HELP)
def insights_export(output: str | None, scope: str | None) -> None:
    """Write the scope's insights, dashboards and annotations as one JSON document."""
    text = json.dumps(export_insights(scope_id=scope), indent=2, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        with open(output, "w", encoding="utf-8") as target:
            target.write(text)


@insights_group.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--scope", default=None, help=SCOPE_HELP)
def insights_import(file: IO[str], scope: str | None) -> None:
    """Create the insights and dashboards of an exported FILE ('-' for stdin) in the scope;
    nothing is written when any of them is refused."""
    try:
        document = json.load(file)
    except ValueError as exc:
        raise click.ClickException(f"{file.name}: not JSON ({exc})") from exc
    try:
        counts = import_insights(document, scope_id=scope, actor="cli")
    except UMetricsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"imported {counts['insights']} insights, {counts['dashboards']} dashboards"
        f" and {counts['annotations']} annotations"
    )


@umetrics_cli.group("dashboards")
def dashboards_group() -> None:
    """Dashboards (grids of insights)."""


@dashboards_group.command("list")
@click.option("--scope", default=None, help=SCOPE_HELP)
def dashboards_list(scope: str | None) -> None:
    """One line per dashboard: id, tiles, name."""
    for dashboard in list_dashboards(scope_id=scope):
        click.echo(f"{dashboard.id}\t{len(dashboard.tiles)} tiles\t{dashboard.name}")


@dashboards_group.command("export")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="Default: stdout.")
@click.option("--scope", default=None, help=SCOPE_HELP)
@click.pass_context
def dashboards_export(ctx: click.Context, output: str | None, scope: str | None) -> None:
    """The same document as ``insights export``: dashboards with the insights they show."""
    ctx.invoke(insights_export, output=output, scope=scope)
