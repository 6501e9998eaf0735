"""``flask umetrics annotations list|add|delete``: the dated notes charts mark on their time
axis (docs/annotations.md), from the shell, e.g. from a deploy script."""

from __future__ import annotations

from datetime import datetime

import click

from .annotations import create_annotation, delete_annotation, list_annotations
from .api.params import parse_iso_datetime
from .cli import umetrics_cli
from .errors import UMetricsError

SCOPE_HELP = "Scope (default: UMETRICS_DEFAULT_SCOPE)."
WHEN_HELP = "ISO 8601 date or date-time; without an offset, in UMETRICS_TIMEZONE."


def _moment(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment: datetime = parse_iso_datetime(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None
    return moment


@umetrics_cli.group("annotations")
def annotations_group() -> None:
    """Annotations: dated notes the dashboard's charts mark."""


@annotations_group.command("list")
@click.option("--from", "date_from", default=None, help="From this moment. " + WHEN_HELP)
@click.option("--to", "date_to", default=None, help="Before this moment. " + WHEN_HELP)
@click.option("--scope", default=None, help=SCOPE_HELP)
def annotations_list(date_from: str | None, date_to: str | None, scope: str | None) -> None:
    """One line per annotation, earliest first: id, moment (UTC), text."""
    try:
        found = list_annotations(
            date_from=_moment(date_from, "--from"),
            date_to=_moment(date_to, "--to"),
            scope_id=scope,
        )
    except UMetricsError as exc:
        raise click.ClickException(str(exc)) from exc
    for note in found:
        click.echo(f"{note.id}\t{note.occurs_at.isoformat()}\t{note.text}")


@annotations_group.command("add")
@click.argument("when")
@click.argument("text")
@click.option("--scope", default=None, help=SCOPE_HELP)
def annotations_add(when: str, text: str, scope: str | None) -> None:
    """Note TEXT at WHEN (ISO 8601; without an offset, in UMETRICS_TIMEZONE); prints its id."""
    moment = _moment(when, "WHEN")
    assert moment is not None
    try:
        note = create_annotation(moment, text, scope_id=scope, actor="cli")
    except UMetricsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{note.id}\t{note.occurs_at.isoformat()}\t{note.text}")


@annotations_group.command("delete")
@click.argument("annotation_id", type=click.IntRange(min=1))
@click.option("--scope", default=None, help=SCOPE_HELP)
def annotations_delete(annotation_id: int, scope: str | None) -> None:
    """Delete the annotation of that id."""
    try:
        deleted = delete_annotation(annotation_id, scope_id=scope, actor="cli")
    except UMetricsError as exc:
        raise click.ClickException(str(exc)) from exc
    if not deleted:
        raise click.ClickException(f"no annotation {annotation_id} in this scope")
    click.echo(f"deleted annotation {annotation_id}")
