"""Simulated traffic for the ``pricing-page`` experiment, so its results show real statistics.

Every seeded user and every anonymous demo visitor (``--users`` plus four times as many
visitors: 2,000 subjects by default) opens the pricing page *now*, the way the app would record
it with their consent:

- a user: ``resolve_variant(..., consent=True)``, which stores the assignment and logs the
  exposure (the path of a logged-in request);
- a visitor: an anonymous visitor's assignment lives in their consent cookie, so the request path
  stores no assignment, only the exposure (``write_served`` with ``store_assignment=False``, as
  ``RequestFlags.finish`` does). The variant comes from the same rules
  (``resolve_variant(..., consent=False)`` decides without writing); all visitors' exposures are
  written in one transaction, or seeding would spend most of its time in commits.

Paying workspaces fall outside the experiment's targeting and get no exposure. Exposures carry the
current time, so whatever follows them happens in the next minutes: ingestion accepts timestamps
up to an hour ahead (``UMETRICS_MAX_EVENT_FUTURE_SECONDS``), and the charts catch up shortly.

Exactly 9% of the exposed upgrade under ``control`` and 12% under ``annual-first`` (which ones is
random), so the results show the lift we built in rather than sampling noise. A user's workspace
really switches plan, so MRR agrees with the events; a visitor's upgrade stands for someone who
signed up and paid in one go (no account is created, so ``--users`` stays the number of users).
For the guardrail, a fifth of the exposed users write a note, in either variant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from flask_umetrics import resolve_variant
from flask_umetrics.flags.recording import Served, write_served
from flask_umetrics.state import current_state

from . import demo_events
from .analytics import SCOPE
from .database import db, utcnow
from .experiments import PRICING_PAGE
from .models import PLANS, Note, Organization, User

#: Share of each variant's exposed subjects who upgrade.
UPGRADE_RATES = {"control": 0.09, "annual-first": 0.12}
TEAM_SHARE = 0.25
NOTE_RATE = 0.2
UPGRADE_DELAY_SECONDS = (30.0, 900.0)
NOTE_DELAY_SECONDS = (60.0, 1200.0)
NOTE_TITLES = ("Pricing questions for the team", "Budget for tools", "Which plan do we need?")
NOTE_BODY = "Compare the yearly and the monthly price."


@dataclass(frozen=True)
class Exposed:
    subject_id: str
    variant: str
    at: datetime
    user: User | None


@dataclass
class TrafficSummary:
    """What the simulation did: exposed subjects and upgrades per variant, notes, events."""

    exposed: dict[str, int] = field(default_factory=dict)
    upgraded: dict[str, int] = field(default_factory=dict)
    notes: int = 0
    events: int = 0


def _expose_users(users: list[User]) -> list[Exposed]:
    exposed = []
    for user in users:
        attributes = {"plan": user.plan, "email_domain": user.email_domain}
        served = resolve_variant(
            PRICING_PAGE,
            scope_id=SCOPE,
            subject_id=str(user.id),
            consent=True,
            attributes=attributes,
        )
        if served.in_experiment and served.variant is not None:
            exposed.append(Exposed(str(user.id), served.variant, utcnow(), user))
    return exposed


def _expose_visitors(visitors: int) -> list[Exposed]:
    exposed, served = [], []
    now = utcnow()
    for number in range(visitors):
        subject_id = demo_events.anonymous_visitor(number)
        result = resolve_variant(PRICING_PAGE, scope_id=SCOPE, subject_id=subject_id, consent=False)
        if result.in_experiment and result.variant is not None:
            exposed.append(Exposed(subject_id, result.variant, now, None))
            served.append(
                Served(
                    subject_id,
                    PRICING_PAGE,
                    result.bucket_version,
                    result.variant,
                    "hash",
                    now,
                    store_assignment=False,
                )
            )
    with current_state().engine.begin() as connection:
        write_served(connection, SCOPE, served)
    return exposed


def _upgrade(rng: random.Random, subject: Exposed) -> dict[str, Any]:
    at = subject.at + timedelta(seconds=rng.uniform(*UPGRADE_DELAY_SECONDS))
    plan = "team" if rng.random() < TEAM_SHARE else "pro"
    if subject.user is not None:
        subject.user.organization.change_plan(plan, at=at)
        subject.user.last_seen_at = max(subject.user.last_seen_at or at, at)
    properties = {"plan": plan, "value": PLANS[plan].price_usd}
    return demo_events.event_row(subject.subject_id, "plan_upgraded", at, properties)


def _write_note(rng: random.Random, subject: Exposed, user: User) -> dict[str, Any]:
    at = subject.at + timedelta(seconds=rng.uniform(*NOTE_DELAY_SECONDS))
    title = rng.choice(NOTE_TITLES)
    db.session.add(Note(user_id=user.id, title=title, body=NOTE_BODY, created_at=at))
    user.last_seen_at = max(user.last_seen_at or at, at)
    properties = {"length": len(NOTE_BODY)}
    return demo_events.event_row(subject.subject_id, "note_created", at, properties)


def simulate_traffic(rng: random.Random, visitors: int) -> TrafficSummary:
    """Expose every user and ``visitors`` anonymous visitors; upgrades and notes follow."""
    users = db.session.scalars(
        select(User)
        .options(selectinload(User.organization).selectinload(Organization.subscriptions))
        .order_by(User.id)
    ).all()
    exposed = _expose_users(list(users)) + _expose_visitors(visitors)
    summary = TrafficSummary()
    rows: list[dict[str, Any]] = []
    for variant, rate in UPGRADE_RATES.items():
        group = [subject for subject in exposed if subject.variant == variant]
        upgrading = rng.sample(group, round(rate * len(group)))
        rows.extend(_upgrade(rng, subject) for subject in upgrading)
        summary.exposed[variant] = len(group)
        summary.upgraded[variant] = len(upgrading)
    for subject in exposed:
        if subject.user is not None and rng.random() < NOTE_RATE:
            rows.append(_write_note(rng, subject, subject.user))
            summary.notes += 1
    db.session.commit()
    summary.events = demo_events.ingest(rows)
    return summary
