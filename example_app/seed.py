"""``flask --app example_app seed-demo``: reproducible demo data plus the stat history it implies.

Everything is drawn from seeded ``random.Random`` generators relative to today's midnight (UTC),
so each run builds the same company. The backfill then asks :mod:`example_app.metrics` what each
metric was at noon of every past day, so the charts agree with the rows in the database. Then the
demo's flag and experiment are (re)created and started (:mod:`example_app.experiments`), the
pricing-page experiment gets its simulated traffic (:mod:`example_app.demo_experiment`), and a
consent-cookie key is written to ``instance/`` once (:mod:`example_app.consent`), and a new
ingest key for the browser client to ``instance/write-key.txt`` (:mod:`example_app.tracking`).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import click
from flask import Flask, current_app
from sqlalchemy import delete, insert, inspect, select
from werkzeug.security import generate_password_hash

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

from . import consent, demo_events, demo_experiment, experiments, metrics, tracking
from .analytics import SCOPE
from .database import db
from .models import PLANS, Note, Organization, User

ADMIN_EMAIL = "admin@example.com"
DEMO_PASSWORD = "demo"
API_KEY_NAME = "demo"
BROWSER_KEY_NAME = "browser"
CREDENTIALS_FILE = "demo-credentials.txt"
DEMO_URL = "http://127.0.0.1:5000"
#: Anonymous demo visitors per user: they browse, never sign up, and see the pricing experiment.
VISITORS_PER_USER = 4

FIRST_NAMES = (
    "Ada",
    "Alan",
    "Amara",
    "Ben",
    "Carla",
    "Chen",
    "Dana",
    "Diego",
    "Elena",
    "Emeka",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Ivan",
    "Jamal",
    "Julia",
    "Kai",
    "Lena",
    "Luis",
    "Maya",
    "Mei",
    "Nadia",
    "Noah",
    "Olga",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Sofia",
    "Tariq",
    "Uma",
    "Victor",
    "Wen",
    "Yara",
    "Yusuf",
    "Zoe",
)
LAST_NAMES = (
    "Adams",
    "Bauer",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quispe",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Varga",
    "Wright",
    "Xu",
    "Yilmaz",
    "Zhang",
)
DOMAINS = (
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "outlook.com",
    "outlook.com",
    "proton.me",
    "fastmail.com",
    "initech.com",
    "globex.io",
    "hooli.com",
    "piedpiper.net",
    "umbrella.co",
    "stark.dev",
    "wayne.org",
)
TOPICS = (
    "Q3 roadmap",
    "onboarding",
    "the offsite",
    "hiring",
    "the launch",
    "pricing",
    "the API",
    "customer calls",
    "the newsletter",
    "the budget",
    "reading list",
    "the migration",
    "travel",
    "recipes",
    "the garden",
    "side project",
)
TITLE_PATTERNS = (
    "Notes on {}",
    "Ideas for {}",
    "Checklist: {}",
    "Draft: {}",
    "Questions about {}",
    "Follow-ups from {}",
    "Thoughts on {}",
)
SENTENCES = (
    "Keep it short and ship it this week.",
    "Ask the team for feedback before Friday.",
    "The numbers look better than last month.",
    "Open question: who owns this after launch?",
    "Write the summary first, then the details.",
    "Three things went well and one did not.",
    "Block an hour on Monday to finish this.",
    "Link the related docs here once they exist.",
)


@dataclass(frozen=True)
class Engagement:
    """How a kind of user behaves: share of sign-ups, odds of paying, how long they stay."""

    weight: int
    upgrade_chance: float
    mean_lifetime_days: float
    notes_per_day: float


ENGAGEMENTS: dict[str, Engagement] = {
    "dormant": Engagement(weight=35, upgrade_chance=0.03, mean_lifetime_days=3, notes_per_day=0.8),
    "casual": Engagement(weight=45, upgrade_chance=0.18, mean_lifetime_days=35, notes_per_day=0.25),
    "active": Engagement(weight=20, upgrade_chance=0.5, mean_lifetime_days=240, notes_per_day=0.7),
}
TEAM_SHARE = 0.25
CANCEL_CHANCE = 0.3
MEAN_DAYS_TO_UPGRADE = 12.0
MEAN_DAYS_TO_CANCEL = 30.0
#: Sign-up times follow Beta(GROWTH, 1) over the period: a density rising towards today.
GROWTH = 1.8


@dataclass(frozen=True)
class SeedSummary:
    users: int
    organizations: int
    notes: int


def init_app(app: Flask) -> None:
    @app.cli.command("seed-demo")
    @click.option(
        "--days",
        default=120,
        show_default=True,
        type=click.IntRange(1, 3650),
        help="Length of the simulated history, ending today.",
    )
    @click.option(
        "--users",
        default=400,
        show_default=True,
        type=click.IntRange(min=1),
        help="How many users, the admin included.",
    )
    @click.option(
        "--reset/--no-reset",
        default=True,
        show_default=True,
        help="Wipe the app's tables, the scope's stat history, events and flags first.",
    )
    def seed_demo(days: int, users: int, reset: bool) -> None:
        """Fill the database with a reproducible demo company and its stat history."""
        seed(days=days, users=users, reset=reset)


def seed(*, days: int, users: int, reset: bool) -> None:
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

    end = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    summary = _create_data(random.Random(42), start, end, users)
    click.echo(f"users: {summary.users}")
    click.echo(f"organizations: {summary.organizations}")
    click.echo(f"notes: {summary.notes}")
    click.echo(f"paying customers: {metrics.paying_customers()} (MRR ${metrics.mrr():,.0f})")

    visitors = users * VISITORS_PER_USER
    tracked = demo_events.seed_events(random.Random(7), start, end, visitors=visitors)
    click.echo(f"events: {tracked} (page views, sign-ups, notes, upgrades; anonymous visits)")

    readings = _backfill(start, days)
    click.echo(f"stat readings: {readings} over {days} days")

    click.echo("flags and experiments:")
    experiments.echo_flags(experiments.ensure_flags())
    traffic = demo_experiment.simulate_traffic(random.Random(11), visitors=visitors)
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

    api_key = create_api_key(SCOPE, "metrics.view", name=API_KEY_NAME, created_by="seed-demo")
    click.echo(f"API key (metrics.view on {SCOPE!r}): {api_key}")
    path = _write_credentials(api_key)
    click.echo(f"seeded in {time.perf_counter() - started:.1f} s")
    _print_summary(api_key, path)


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
    experiments.delete_all_flags()
    for key in list_api_keys(SCOPE):
        if key.name in (API_KEY_NAME, BROWSER_KEY_NAME):
            revoke_api_key(key.key_id, scope_id=SCOPE, actor="seed-demo")


def _unique_email(first: str, last: str, domain: str, taken: set[str]) -> str:
    base = f"{first}.{last}".lower()
    email, suffix = f"{base}@{domain}", 1
    while email in taken:
        suffix += 1
        email = f"{base}{suffix}@{domain}"
    taken.add(email)
    return email


def _note_rows(rng: random.Random, user_id: int, times: list[datetime]) -> list[dict[str, object]]:
    return [
        {
            "user_id": user_id,
            "title": rng.choice(TITLE_PATTERNS).format(rng.choice(TOPICS)),
            "body": " ".join(rng.sample(SENTENCES, 2)),
            "created_at": at,
        }
        for at in times
    ]


def _create_data(rng: random.Random, start: datetime, end: datetime, users: int) -> SeedSummary:
    """Users with sign-ups growing over ``[start, end)``, their plans over time, their notes."""
    # One hash for every demo account: scrypt takes ~0.1 s, 400 of them would take a minute.
    password_hash = generate_password_hash(DEMO_PASSWORD)
    staff = Organization(name="Acme Inc.", created_at=start)
    staff.change_plan("free", at=start)
    admin = User(
        email=ADMIN_EMAIL,
        name="Ada Admin",
        password_hash=password_hash,
        is_admin=True,
        created_at=start,
        organization=staff,
    )
    admin_notes = [end - timedelta(days=d, hours=3) for d in (9, 4, 1)]
    admin.last_seen_at = admin_notes[-1]
    pending: list[tuple[User, list[datetime]]] = [(admin, admin_notes)]
    organizations = [staff]

    period_days = (end - start) / timedelta(days=1)
    kinds = list(ENGAGEMENTS)
    weights = [ENGAGEMENTS[kind].weight for kind in kinds]
    taken = {ADMIN_EMAIL}
    for _ in range(users - 1):
        joined = start + timedelta(days=period_days * rng.betavariate(GROWTH, 1.0))
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        organization = Organization(name=f"{first}'s workspace", created_at=joined)
        organization.change_plan("free", at=joined)
        profile = ENGAGEMENTS[rng.choices(kinds, weights)[0]]
        if rng.random() < profile.upgrade_chance:
            upgraded = joined + timedelta(days=rng.expovariate(1 / MEAN_DAYS_TO_UPGRADE))
            if upgraded < end:
                organization.change_plan(
                    "team" if rng.random() < TEAM_SHARE else "pro", at=upgraded
                )
                cancelled = upgraded + timedelta(days=rng.expovariate(1 / MEAN_DAYS_TO_CANCEL))
                if rng.random() < CANCEL_CHANCE and cancelled < end:
                    organization.change_plan("free", at=cancelled)
        stops = min(end, joined + timedelta(days=rng.expovariate(1 / profile.mean_lifetime_days)))
        times: list[datetime] = []
        at = joined + timedelta(minutes=rng.uniform(2, 90))
        while at < stops:
            times.append(at)
            at += timedelta(days=rng.expovariate(profile.notes_per_day))
        user = User(
            email=_unique_email(first, last, rng.choice(DOMAINS), taken),
            name=f"{first} {last}",
            password_hash=password_hash,
            created_at=joined,
            # The last thing they did; metrics.active_users_7d relies on this for history.
            last_seen_at=max([joined, *times]),
            organization=organization,
        )
        pending.append((user, times))
        organizations.append(organization)

    db.session.add_all(organizations)
    db.session.add_all(user for user, _times in pending)
    db.session.flush()
    rows = [row for user, times in pending for row in _note_rows(rng, user.id, times)]
    if rows:
        db.session.execute(insert(Note), rows)
    db.session.commit()
    return SeedSummary(users=len(pending), organizations=len(organizations), notes=len(rows))


def _backfill(start: datetime, days: int) -> int:
    """One reading per metric at noon of every day, computed from the data as it was then."""
    count = 0
    for day in range(days):
        at = start + timedelta(days=day, hours=12)
        for key, measure in metrics.METRICS.items():
            record_stat(key, measure(at), scope_id=SCOPE, captured_at=at, source="demo")
            count += 1
        if (day + 1) % 30 == 0 and day + 1 < days:
            click.echo(f"  backfilled {day + 1}/{days} days")
    db.session.remove()
    return count


def _print_experiment(traffic: demo_experiment.TrafficSummary) -> None:
    """The simulated traffic and what the results page will say about it."""
    experiment = get_experiment(experiments.PRICING_PAGE, scope_id=SCOPE)
    assert experiment is not None  # ensure_flags just made sure
    for variant in experiment.variant_keys:
        exposed, upgraded = traffic.exposed.get(variant, 0), traffic.upgraded.get(variant, 0)
        click.echo(f"  {experiment.key} {variant:<13} exposed {exposed:>5}  upgraded {upgraded:>4}")
    click.echo(f"  then {traffic.notes} notes; {traffic.events} events after the exposures")
    results = experiment_results(experiment)
    treatment, srm = results["variants"][-1], results["srm"]
    if treatment["rel_lift"] is not None and srm is not None:
        click.echo(
            f"  {treatment['key']} vs control: {treatment['rel_lift']:+.0%} upgrades "
            f"(p = {treatment['p_value']:.3f}); sample ratio check p = {srm['p_value']:.2f}"
        )


def _write_credentials(api_key: str) -> str:
    """Keep the key somewhere findable: it is shown once and only its hash is stored."""
    os.makedirs(current_app.instance_path, exist_ok=True)
    path = os.path.join(current_app.instance_path, CREDENTIALS_FILE)
    stats_url = f"{DEMO_URL}/umetrics/api/stats?scope_id={SCOPE}"
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


def _print_summary(api_key: str, path: str) -> None:
    stats_url = f"{DEMO_URL}/umetrics/api/stats?scope_id={SCOPE}"
    click.echo("")
    click.echo("Acme Notes demo is ready. Start it with: flask --app example_app run")
    click.echo(f"  Log in at {DEMO_URL}/login as {ADMIN_EMAIL} / {DEMO_PASSWORD} (an admin);")
    click.echo(f"  every other demo user has the password {DEMO_PASSWORD!r} too.")
    click.echo("  Read the stats API with the admin login (HTTP Basic):")
    click.echo(f"    curl -u {ADMIN_EMAIL}:{DEMO_PASSWORD} '{stats_url}'")
    click.echo("  or with the API key (metrics.view on scope 'acme'):")
    click.echo(f"    curl -H 'Authorization: Bearer {api_key}' '{stats_url}'")
    click.echo(f"  Both credentials are saved in {path}")
    click.echo(
        "  Experiment results: flask --app example_app umetrics experiments results pricing-page"
    )
    click.echo(f"  Plans: {', '.join(f'{p.name} ${p.price_usd}/month' for p in PLANS.values())}")
