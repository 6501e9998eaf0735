"""``flask umetrics`` commands for events: export, import, forget-person."""

from __future__ import annotations

import contextlib
import sys
from datetime import datetime
from pathlib import Path
from typing import IO

import click

from .api.params import parse_iso_datetime
from .cli import umetrics_cli
from .errors import UMetricsError
from .events.export import ImportReport, export_events, import_events
from .events.privacy import anonymize_person, delete_person
from .state import resolve_scope

_SHOWN_REJECTIONS = 50


def _iso_datetime(value: str | None, option: str) -> datetime | None:
    """ISO 8601; a date alone or no offset means UMETRICS_TIMEZONE (as in the REST API).

    Parsed in the command body: the time zone needs the app context, which option callbacks
    do not have yet.
    """
    if value is None:
        return None
    try:
        moment: datetime = parse_iso_datetime(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: {exc}", param_hint=option) from exc
    return moment


def _guess_format(path: str, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise click.UsageError("cannot tell the format from the file name: pass --format csv|jsonl")


@umetrics_cli.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="Default: stdout.")
@click.option("--since", default=None, help="Inclusive lower bound.")
@click.option("--until", default=None, help="Exclusive upper bound.")
@click.option("--event", default=None, help="Only this event.")
@click.option("--scope", default=None, help="Scope (default: UMETRICS_DEFAULT_SCOPE).")
def export_command(
    fmt: str,
    output: str | None,
    since: str | None,
    until: str | None,
    event: str | None,
    scope: str | None,
) -> None:
    """Write the scope's events, oldest first, as CSV or JSONL."""

    def progress(total: int) -> None:
        click.echo(f"  exported {total} events so far", err=True)

    try:
        chunks = export_events(
            scope,
            fmt=fmt,
            date_from=_iso_datetime(since, "--since"),
            date_to=_iso_datetime(until, "--until"),
            event=event,
            progress=progress,
        )
    except UMetricsError as exc:
        raise click.ClickException(str(exc)) from exc
    with contextlib.ExitStack() as stack:
        target: IO[str] = sys.stdout
        if output is not None:
            target = stack.enter_context(open(output, "w", encoding="utf-8", newline=""))
        for chunk in chunks:
            target.write(chunk)
        target.flush()
    click.echo(f"export of scope {resolve_scope(scope)} done", err=True)


def _print_progress(report: ImportReport) -> None:
    click.echo(
        f"  rows read {report.read}, accepted {report.accepted}, "
        f"duplicates {report.duplicates}, rejected {len(report.rejected)}",
        err=True,
    )


@umetrics_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default=None,
    help="Default: from the file name (.csv, .jsonl, .ndjson).",
)
@click.option("--scope", default=None, help="Scope (default: UMETRICS_DEFAULT_SCOPE).")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(min=1))
def import_command(file: str, fmt: str | None, scope: str | None, batch_size: int) -> None:
    """Store the events of an export FILE ('-' for stdin); exits 1 if any line was rejected.

    Idempotent by event uuid: importing the same file again stores nothing new.
    """
    fmt = _guess_format(file, fmt)
    try:
        if file == "-":
            report = import_events(
                sys.stdin, fmt=fmt, scope_id=scope, batch_size=batch_size, progress=_print_progress
            )
        else:
            with open(file, encoding="utf-8", newline="") as handle:
                report = import_events(
                    handle, fmt=fmt, scope_id=scope, batch_size=batch_size, progress=_print_progress
                )
    except (UMetricsError, OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(str(exc)) from exc
    for line, error in report.rejected[:_SHOWN_REJECTIONS]:
        click.echo(f"  line {line}: {error}", err=True)
    if len(report.rejected) > _SHOWN_REJECTIONS:
        click.echo(f"  ... and {len(report.rejected) - _SHOWN_REJECTIONS} more", err=True)
    click.echo(
        f"imported into scope {resolve_scope(scope)}: {report.read} rows read, "
        f"{report.accepted} accepted, {report.duplicates} duplicates, "
        f"{len(report.rejected)} rejected, {report.filtered} filtered as bots"
    )
    if report.rejected:
        sys.exit(1)


@umetrics_cli.command("forget-person")
@click.argument("distinct_id")
@click.option("--scope", default=None, help="Scope (default: UMETRICS_DEFAULT_SCOPE).")
@click.option(
    "--anonymize", is_flag=True, help="Keep the events but remove the identity (no deletion)."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget_person_command(distinct_id: str, scope: str | None, anonymize: bool, yes: bool) -> None:
    """Delete (or anonymise) the person of DISTINCT_ID with all their ids and events (GDPR)."""
    try:
        scope_id = resolve_scope(scope)
    except UMetricsError as exc:
        raise click.ClickException(str(exc)) from exc
    verb = "Anonymise" if anonymize else "Permanently delete"
    if not yes:
        click.confirm(
            f"{verb} the person of {distinct_id!r} in scope {scope_id!r}, with every distinct id "
            "merged into them?",
            abort=True,
        )
    if anonymize:
        anonymized = anonymize_person(distinct_id, scope_id=scope_id)
        if not anonymized.found:
            raise click.ClickException(f"no person with distinct id {distinct_id!r}")
        click.echo(
            f"anonymised person {anonymized.person_id}: {anonymized.distinct_ids} distinct ids "
            f"replaced, {anonymized.events} events rewritten"
        )
        return
    deleted = delete_person(distinct_id, scope_id=scope_id)
    if not deleted.found:
        raise click.ClickException(f"no person with distinct id {distinct_id!r}")
    click.echo(
        f"deleted person {deleted.person_id}: {deleted.distinct_ids} distinct ids, "
        f"{deleted.events} events"
    )
