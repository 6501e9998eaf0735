"""The demo's flag and experiment, created idempotently, and the ``setup-flags`` command.

- ``pricing-page``: an A/B test of the pricing page, ``control`` (monthly prices first) against
  ``annual-first`` (yearly prices first), 50/50, for everyone who can still upgrade (anonymous
  visitors and Free workspaces). Goal: ``plan_upgraded`` (tracked by ``POST /upgrade``); guardrail:
  writing a note (a pricing page should not scare people off the product); mean: the upgrade's
  ``value`` in USD, i.e. revenue per exposed visitor.
- ``new-editor``: a boolean flag rolled out to 50% of paying workspaces and of Acme staff;
  ``notes.html`` shows the new editor when it is on.

``seed-demo`` recreates both (and simulates traffic, see :mod:`example_app.demo_experiment`);
``setup-flags`` only creates the missing ones and starts them, so it is safe to run against a
live database: a flag an admin stopped or edited stays as it is.
"""

from __future__ import annotations

from typing import Any

import click
from flask import Flask
from sqlalchemy import inspect

from flask_umetrics import (
    create_experiment,
    delete_experiment,
    get_experiment,
    list_experiments,
    start_experiment,
    stop_experiment,
)
from flask_umetrics.db.tables import experiments
from flask_umetrics.flags.model import Experiment

from .analytics import SCOPE
from .database import db
from .models import PAID_PLANS

PRICING_PAGE = "pricing-page"
NEW_EDITOR = "new-editor"
STAFF_DOMAIN = "example.com"
ACTOR = "example_app"

DEFINITIONS: tuple[dict[str, Any], ...] = (
    {
        "key": PRICING_PAGE,
        "name": "Pricing page: annual prices first",
        "description": "Does leading with the yearly price (2 months free) sell more upgrades?",
        "kind": "experiment",
        "variants": [
            {"key": "control", "weight": 0.5, "name": "Monthly first"},
            {"key": "annual-first", "weight": 0.5, "name": "Annual first"},
        ],
        # Paying workspaces cannot upgrade any more; anonymous visitors have no plan and pass.
        "conditions": {"plan": {"$nin": list(PAID_PLANS)}},
        "metrics": [
            {"kind": "conversion", "event": "plan_upgraded"},
            {"kind": "mean", "event": "plan_upgraded", "property": "value"},
            {"kind": "conversion", "event": "note_created", "guardrail": True},
        ],
    },
    {
        "key": NEW_EDITOR,
        "name": "New note editor",
        "description": "The formatting toolbar and larger editor, for paying workspaces first.",
        "kind": "flag",
        "variants": [{"key": "off", "weight": 0.5}, {"key": "on", "weight": 0.5}],
        "conditions": {
            "$or": [{"plan": {"$in": list(PAID_PLANS)}}, {"email_domain": STAFF_DOMAIN}]
        },
    },
)


def ensure_flags() -> list[tuple[Experiment, bool]]:
    """Create and start every demo definition that is missing; ``(definition, created)`` each."""
    results = []
    for definition in DEFINITIONS:
        existing = get_experiment(definition["key"], scope_id=SCOPE)
        if existing is not None:
            results.append((existing, False))
            continue
        create_experiment(definition, scope_id=SCOPE, actor=ACTOR)
        results.append((start_experiment(definition["key"], scope_id=SCOPE, actor=ACTOR), True))
    return results


def delete_all_flags() -> int:
    """Delete every flag and experiment of the scope with its assignments and exposures.

    ``seed-demo --reset`` renumbers the users, so assignments stored for the old ones would be
    handed to strangers. Running ones are stopped first (the store refuses to delete them).
    """
    found = list_experiments(scope_id=SCOPE)
    for experiment in found:
        if experiment.status == "running":
            stop_experiment(experiment.key, scope_id=SCOPE, actor=ACTOR)
        delete_experiment(experiment.key, scope_id=SCOPE, actor=ACTOR)
    return len(found)


def echo_flags(results: list[tuple[Experiment, bool]]) -> None:
    for experiment, created in results:
        state = "created and started" if created else f"exists ({experiment.status})"
        click.echo(f"  {experiment.kind} {experiment.key}: {state}")


def init_app(app: Flask) -> None:
    @app.cli.command("setup-flags")
    def setup_flags() -> None:
        """Create and start the demo's flag and experiment where they are missing."""
        if not inspect(db.engine).has_table(experiments.name):
            raise click.ClickException(
                "the umetrics tables are missing: run `flask --app example_app umetrics db upgrade`"
            )
        click.echo(f"flags and experiments of scope {SCOPE!r}:")
        echo_flags(ensure_flags())
