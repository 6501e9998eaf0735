"""``flask --app example_app seed-demo``: a reproducible demo company and the history it implies.

One anchor, ``now`` (when the seed runs), and seeded ``random.Random`` generators (``--seed``)
decide everything: the same seed builds the same company, shifted to end at its ``now``, and
nothing is dated after it. In order: the users, their plans and notes
(:mod:`example_app.demo_people`); the demo's flag and experiment, the experiment started weeks
ago with its exposures and the upgrades it decides (:mod:`example_app.demo_experiment`); the
events all of that implies (:mod:`example_app.demo_events`); then one reading per metric for
every day before ``now``, asked of :mod:`example_app.metrics` as of that moment, and a live
snapshot, so the charts agree with the rows and run on into today without a step. A
consent-cookie key is written to ``instance/`` once (:mod:`example_app.consent`), and a new
ingest key for the browser client to ``instance/write-key.txt`` (:mod:`example_app.tracking`), and
a new open-metrics key to ``instance/openmetrics-key.txt`` (:mod:`example_app.openmetrics`).
The summary at the end is read back from the database, so it is what the dashboard shows.
"""

from __future__ import annotations

import os
import random
import time
from datetime import datetime, timedelta, timezone

import click
from flask import Flask, current_app
from sqlalchemy import delete, func, inspect, select

from flask_umetrics import (
    create_api_key,
    experiment_results,
    get_experiment,
    list_api_keys,
    record_stat,
    revoke_api_key,
    run_stat_snapshot,
)
from flask_umetrics.db.tables import collector_runs, snapshot_runs, stat_readings
from flask_umetrics.queries.adhoc import QuerySpec, SelectItem, run_query
from flask_umetrics.state import current_state

from . import (
    consent,
    demo_dashboards,
    demo_events,
    demo_experiment,
    demo_people,
    experiments,
    metrics,
    openmetrics,
    tracking,
)
from .analytics import SCOPE
from .database import db
from .demo_people import ADMIN_EMAIL, DEMO_PASSWORD
from .models import PLANS, Note, Organization, User

API_KEY_NAME = "demo"
BROWSER_KEY_NAME = "browser"
OPENMETRICS_KEY_NAME = "open-metrics"
CREDENTIALS_FILE = "demo-credentials.txt"
DEFAULT_SEED = 42
#: Where `make demo` serves the app unless ``DEMO_PORT`` says otherwise (Flask's own default).
DEFAULT_PORT = 5000
#: Anonymous demo visitors per user: they browse, never sign up, and see the pricing experiment.
VISITORS_PER_USER = 4


def init_app(app: Flask) -> None:
    @app.cli.command("seed-demo")
    @click.option(
        "--days",
        default=120,
        show_default=True,
        type=click.IntRange(1, 3650),
        help="Length of the simulated history, ending now.",
    )
    @click.option(
        "--users",
        default=400,
        show_default=True,
        type=click.IntRange(min=1),
        help="How many users, the admin included (and four anonymous visitors per user).",
    )
    @click.option(
        "--seed",
        "seed_value",
        default=DEFAULT_SEED,
        show_default=True,
        type=int,
        help="Random seed: the same seed builds the same data, ending at the time of the run.",
    )
    @click.option(
        "--port",
        default=DEFAULT_PORT,
        show_default=True,
        envvar=["DEMO_PORT", "FLASK_RUN_PORT"],
        type=click.IntRange(1, 65535),
        help="The port the demo is served on, for the URLs printed and saved "
        "(env: DEMO_PORT, else FLASK_RUN_PORT, which `flask run` reads too).",
    )
    @click.option(
        "--reset/--no-reset",
        default=True,
        show_default=True,
        help="Wipe the app's tables, the scope's stat history, events and flags first.",
    )
    def seed_demo(days: int, users: int, seed_value: int, port: int, reset: bool) -> None:
        """Fill the database with a reproducible demo company and its stat history."""
        seed(days=days, users=users, reset=reset, seed_value=seed_value, port=port)


def seed(
    *,
    days: int,
    users: int,
    reset: bool,
    seed_value: int = DEFAULT_SEED,
    port: int = DEFAULT_PORT,
) -> None:
    """Run every step of ``seed-demo`` in the current app context, printing progress."""
    started = time.perf_counter()
    if not inspect(db.engine).has_table(stat_readings.name):
        raise click.ClickException(
            "the umetrics tables are missing: run `flask --app example_app umetrics db upgrade`"
        )
    if reset:
        _wipe()
    elif db.session.scalar(select(User.id).limit(1)) is not None:
        raise click.ClickException("the database already has users: pass --reset to replace them")

    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(days=days)
    click.echo(f"history: {days} days up to {now.isoformat()} (seed {seed_value})")
    experiment_start = demo_experiment.start_of(start, now)
    click.echo("flags and experiments:")
    experiments.echo_flags(experiments.ensure_flags())
    demo_experiment.backdate_start(experiments.PRICING_PAGE, experiment_start)
    people = demo_people.create_people(
        random.Random(f"{seed_value}:people"), start, now, users, experiment_start
    )
    db.session.commit()
    visits = demo_events.visitor_visits(
        random.Random(f"{seed_value}:visitors"), start, now, users * VISITORS_PER_USER
    )
    pricing_views = {v: visit.pricing_at for v, visit in visits.items() if visit.pricing_at}
    traffic = demo_experiment.simulate(
        random.Random(f"{seed_value}:experiment"), people, pricing_views, experiment_start, now
    )
    demo_people.settle_last_seen(people.members)
    db.session.commit()
    _print_company()

    exposed_at = {e.subject_id: e.at for e in traffic.exposures if e.member is not None}
    tracked = demo_events.seed_events(
        random.Random(f"{seed_value}:events"), people.members, visits, exposed_at
    )
    click.echo(f"events: {tracked} (page views, sign-ups, notes, plan changes; anonymous visits)")

    dashboards = demo_dashboards.create_demo_dashboards()
    click.echo(f"dashboards: {', '.join(dashboards)} (from saved insights)")

    readings = _backfill(start, days)
    click.echo(f"stat readings: {readings} over {days} days")
    _print_experiment(traffic)

    key_path, key_created = consent.write_cookie_key(current_app.instance_path)
    click.echo(f"consent-cookie key: {key_path} ({'new' if key_created else 'kept'})")

    snapshot = run_stat_snapshot(scope_id=SCOPE, trigger="cli")
    click.echo(f"live snapshot {snapshot.id} at {snapshot.captured_at:%Y-%m-%d %H:%M} UTC:")
    for result in snapshot.results:
        shown = result.error if result.status == "error" else result.value
        click.echo(f"  {result.key:<18} {result.status:<8} {shown}")
    if snapshot.failed:
        raise click.ClickException(f"{len(snapshot.failed)} collector(s) failed, see above")

    write_key = create_api_key(SCOPE, "ingest", name=BROWSER_KEY_NAME, created_by="seed-demo")
    write_key_path = tracking.write_browser_key(current_app.instance_path, write_key)
    click.echo(f"browser write key (ingest on {SCOPE!r}): {write_key_path} (loaded at start)")
    om_key = create_api_key(SCOPE, "openmetrics", name=OPENMETRICS_KEY_NAME, created_by="seed-demo")
    om_key_path = openmetrics.write_key(current_app.instance_path, om_key)
    click.echo(f"open-metrics key (openmetrics on {SCOPE!r}): {om_key_path} (loaded at start)")

    api_key = create_api_key(SCOPE, "metrics.view", name=API_KEY_NAME, created_by="seed-demo")
    click.echo(f"API key (metrics.view on {SCOPE!r}): {api_key}")
    url = f"http://127.0.0.1:{port}"
    path = _write_credentials(api_key, url)
    click.echo(f"seeded in {time.perf_counter() - started:.1f} s")
    _print_summary(api_key, path, url, port)


def _wipe() -> None:
    """Recreate the app's tables and drop the scope's stat history and demo keys.

    Old readings described the old users; keeping them would put two companies on one chart.
    The umetrics tables themselves stay (their schema belongs to `umetrics db upgrade`).
    """
    db.session.remove()
    db.drop_all()
    db.create_all()
    with db.engine.begin() as connection:
        connection.execute(delete(stat_readings).where(stat_readings.c.scope_id == SCOPE))
        connection.execute(delete(collector_runs).where(collector_runs.c.scope_id == SCOPE))
        connection.execute(delete(snapshot_runs).where(snapshot_runs.c.scope_id == SCOPE))
    demo_events.wipe_events()
    demo_dashboards.wipe_dashboards()
    experiments.delete_all_flags()
    for key in list_api_keys(SCOPE):
        if key.name in (API_KEY_NAME, BROWSER_KEY_NAME, OPENMETRICS_KEY_NAME):
            revoke_api_key(key.key_id, scope_id=SCOPE, actor="seed-demo")


def _print_company() -> None:
    """The company as stored (read back, so it is what the collectors will say)."""
    count = db.session.scalar
    click.echo(f"users: {count(select(func.count(User.id)))}")
    click.echo(f"organizations: {count(select(func.count(Organization.id)))}")
    click.echo(f"notes: {count(select(func.count(Note.id)))}")
    click.echo(f"paying customers: {metrics.paying_customers()} (MRR ${metrics.mrr():,.0f})")


def _backfill(start: datetime, days: int) -> int:
    """One reading per metric for each day before ``now`` (at ``start`` + whole days), computed
    from the data as it was then; the live snapshot then adds today's, a day after the last."""
    count = 0
    for day in range(days):
        at = start + timedelta(days=day)
        for key, measure in metrics.METRICS.items():
            record_stat(key, measure(at), scope_id=SCOPE, captured_at=at, source="demo")
            count += 1
        if (day + 1) % 30 == 0 and day + 1 < days:
            click.echo(f"  backfilled {day + 1}/{days} days")
    db.session.remove()
    return count


def _print_experiment(traffic: demo_experiment.TrafficSummary) -> None:
    """The simulated traffic, and what the results page says about the stored data."""
    experiment = get_experiment(experiments.PRICING_PAGE, scope_id=SCOPE)
    assert experiment is not None  # ensure_flags just made sure
    click.echo(
        f"experiment {experiment.key}: running since {traffic.started_at:%Y-%m-%d %H:%M} UTC"
    )
    results = experiment_results(experiment)
    for row in results["variants"]:
        click.echo(
            f"  {row['key']:<13} exposed {row['exposures']:>5}  upgraded {row['total']:>4.0f}"
            f"  ({row['mean']:.1%})"
        )
    treatment, srm = results["variants"][-1], results["srm"]
    if treatment["rel_lift"] is not None and srm is not None:
        click.echo(
            f"  {treatment['key']} vs control: {treatment['rel_lift']:+.0%} upgrades "
            f"(p = {treatment['p_value']:.3f}); sample ratio check p = {srm['p_value']:.2f}"
        )


def _write_credentials(api_key: str, url: str) -> str:
    """Keep the key somewhere findable: it is shown once and only its hash is stored."""
    os.makedirs(current_app.instance_path, exist_ok=True)
    path = os.path.join(current_app.instance_path, CREDENTIALS_FILE)
    stats_url = f"{url}/umetrics/api/stats?scope_id={SCOPE}"
    content = (
        "# Acme Notes demo credentials, written by `flask --app example_app seed-demo`.\n"
        "# Shell-friendly: `. instance/demo-credentials.txt` sets the variables below.\n"
        f"ADMIN_EMAIL={ADMIN_EMAIL}\n"
        f"ADMIN_PASSWORD={DEMO_PASSWORD}\n"
        f"UMETRICS_API_KEY={api_key}\n"
        f"# curl -u {ADMIN_EMAIL}:{DEMO_PASSWORD} '{stats_url}'\n"
        f"# curl -H \"Authorization: Bearer $UMETRICS_API_KEY\" '{stats_url}'\n"
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.chmod(path, 0o600)  # also when an older, more open file was overwritten
    return path


def _stored_summary() -> list[str]:
    """What the database holds now, one ``name: number`` line each."""
    count = db.session.scalar
    # Counted by a report, so in the store that holds the events (SQL or ClickHouse).
    until = datetime.now(timezone.utc) + timedelta(days=1)
    everything = QuerySpec(  # ten years: the longest range a report may cover
        select=[SelectItem(expr="count()")], date_from=until - timedelta(days=3650), date_to=until
    )
    tracked = run_query(everything, scope_id=SCOPE).rows[0][0]
    with current_state().engine.connect() as connection:
        readings = connection.execute(
            select(func.count()).select_from(stat_readings).where(stat_readings.c.scope_id == SCOPE)
        ).scalar_one()
    return [
        f"users: {count(select(func.count(User.id)))}",
        f"notes: {count(select(func.count(Note.id)))}",
        f"paying customers: {metrics.paying_customers()}",
        f"MRR: ${metrics.mrr():,.0f}",
        f"events: {tracked}",
        f"stat readings: {readings}",
    ]


def _print_summary(api_key: str, path: str, url: str, port: int) -> None:
    stats_url = f"{url}/umetrics/api/stats?scope_id={SCOPE}"
    run = "flask --app example_app run" + ("" if port == DEFAULT_PORT else f" --port {port}")
    if current_state().event_store.name == "clickhouse":
        # One process (chdb), in the environment that seeded it (make demo-clickhouse does both).
        run += " --no-reload  (same environment: UMETRICS_EVENT_STORE, UMETRICS_CLICKHOUSE_URL)"
    click.echo("")
    click.echo("Stored: " + "; ".join(_stored_summary()))
    click.echo(f"Acme Notes demo is ready. Start it with: {run}")
    click.echo(f"  Log in at {url}/login as {ADMIN_EMAIL} / {DEMO_PASSWORD} (an admin);")
    click.echo(f"  every other demo user has the password {DEMO_PASSWORD!r} too.")
    click.echo(f"  The dashboard: {url}/umetrics/admin/")
    click.echo("  Read the stats API with the admin login (HTTP Basic):")
    click.echo(f"    curl -u {ADMIN_EMAIL}:{DEMO_PASSWORD} '{stats_url}'")
    click.echo(f"  or with the API key (metrics.view on scope {SCOPE!r}):")
    click.echo(f"    curl -H 'Authorization: Bearer {api_key}' '{stats_url}'")
    click.echo(f"  Both credentials are saved in {path}")
    click.echo(
        "  Experiment results: flask --app example_app umetrics experiments results pricing-page"
    )
    click.echo(f"  Plans: {', '.join(f'{p.name} ${p.price_usd}/month' for p in PLANS.values())}")
