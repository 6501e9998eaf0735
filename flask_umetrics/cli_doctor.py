"""``flask umetrics doctor``: every configuration gap with its fix; exit 1 when one is a problem."""

from __future__ import annotations

import sys

import click
from flask import current_app

from .cli import umetrics_cli
from .config_checks import database_findings, static_findings


@umetrics_cli.command("doctor")
def doctor() -> None:
    """Check the configuration, the database and the scheduler; print what to fix."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    findings = static_findings(app) + database_findings(app)
    problems = [f for f in findings if f.severity == "problem"]
    for finding in findings:
        click.echo(f"{finding.severity.upper():<8} [{finding.code}] {finding.problem}")
        click.echo(f"         fix: {finding.fix}")
    if not findings:
        click.echo("ok: no configuration gap found")
    else:
        notes = len(findings) - len(problems)
        click.echo(f"{len(problems)} problem(s), {notes} note(s)")
    if problems:
        sys.exit(1)
