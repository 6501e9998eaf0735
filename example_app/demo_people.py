"""The demo company's own data: users and their workspaces, plans over time, and notes.

Everything is drawn from the seeded generator relative to ``now`` (the seed's anchor), so one
seed builds the same company whenever it runs, and nothing happens after ``now``. Sign-ups grow
towards today; each user has an engagement profile that sets how long they stay, how often they
write notes and how likely they are to pay. Upgrades that fall while the pricing-page experiment
runs are handed to :mod:`example_app.demo_experiment` (:attr:`People.deferred_upgrades`), which
makes them with the effect of the variant each user saw.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert
from werkzeug.security import generate_password_hash

from .database import db
from .models import Note, Organization, User

ADMIN_EMAIL = "admin@example.com"
DEMO_PASSWORD = "demo"

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
    "dormant": Engagement(weight=35, upgrade_chance=0.05, mean_lifetime_days=3, notes_per_day=0.8),
    "casual": Engagement(weight=45, upgrade_chance=0.3, mean_lifetime_days=35, notes_per_day=0.25),
    "active": Engagement(weight=20, upgrade_chance=0.6, mean_lifetime_days=240, notes_per_day=0.7),
}
TEAM_SHARE = 0.25
CANCEL_CHANCE = 0.3
MEAN_DAYS_TO_UPGRADE = 8.0
MEAN_DAYS_TO_CANCEL = 30.0
#: Sign-up times follow Beta(GROWTH, 1) over the period: a density rising towards today.
GROWTH = 1.3


@dataclass
class Member:
    """A seeded user, the times of their notes, and when they stop using the product."""

    user: User
    notes: list[datetime]
    active_until: datetime


@dataclass
class People:
    members: list[Member]
    #: Upgrades drawn inside the experiment's window, not made yet: the experiment makes them,
    #: moving some from ``control`` to ``annual-first`` (same moments, so the same pace).
    deferred_upgrades: list[tuple[Member, datetime]]


def plan_at(organization: Organization, at: datetime) -> str:
    """The workspace's plan at ``at``, from its subscription history."""
    for subscription in organization.subscriptions:
        ended = subscription.cancelled_at
        if subscription.started_at <= at and (ended is None or ended > at):
            return subscription.plan
    return "free"


def upgrade(rng: random.Random, organization: Organization, at: datetime, now: datetime) -> None:
    """Switch to a paid plan at ``at``; some cancel back to Free later (before ``now``)."""
    organization.change_plan("team" if rng.random() < TEAM_SHARE else "pro", at=at)
    cancelled = at + timedelta(days=rng.expovariate(1 / MEAN_DAYS_TO_CANCEL))
    if rng.random() < CANCEL_CHANCE and cancelled < now:
        organization.change_plan("free", at=cancelled)


def settle_last_seen(members: list[Member]) -> None:
    """``last_seen_at``: the user's last recorded activity (sign-up, note or plan change), the
    same activity :func:`example_app.metrics.active_users_7d` counts for a past day."""
    for member in members:
        user = member.user
        changes = [s.started_at for s in user.organization.subscriptions]
        user.last_seen_at = max([user.created_at, *member.notes, *changes])


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


def _admin(start: datetime, now: datetime, password_hash: str) -> Member:
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
    notes = [now - timedelta(days=d, hours=3) for d in (9, 4, 1)]
    return Member(admin, [at for at in notes if at > start], now)


def create_people(
    rng: random.Random, start: datetime, now: datetime, users: int, experiment_start: datetime
) -> People:
    """``users`` users (the admin first) signing up over ``[start, now)``, with their plans and
    notes; added to the session with their notes (ids assigned), not committed."""
    # One hash for every demo account: scrypt takes ~0.1 s, 400 of them would take a minute.
    password_hash = generate_password_hash(DEMO_PASSWORD)
    members = [_admin(start, now, password_hash)]
    period_days = (now - start) / timedelta(days=1)
    kinds = list(ENGAGEMENTS)
    weights = [ENGAGEMENTS[kind].weight for kind in kinds]
    taken = {ADMIN_EMAIL}
    deferred: list[tuple[Member, datetime]] = []
    for _ in range(users - 1):
        joined = start + timedelta(days=period_days * rng.betavariate(GROWTH, 1.0))
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        organization = Organization(name=f"{first}'s workspace", created_at=joined)
        organization.change_plan("free", at=joined)
        profile = ENGAGEMENTS[rng.choices(kinds, weights)[0]]
        upgraded: datetime | None = None
        if rng.random() < profile.upgrade_chance:
            upgraded = joined + timedelta(days=rng.expovariate(1 / MEAN_DAYS_TO_UPGRADE))
            if upgraded < experiment_start:
                upgrade(rng, organization, upgraded, now)
        stops = min(now, joined + timedelta(days=rng.expovariate(1 / profile.mean_lifetime_days)))
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
            organization=organization,
        )
        members.append(Member(user, times, stops))
        if upgraded is not None and experiment_start <= upgraded < now:
            deferred.append((members[-1], upgraded))

    db.session.add_all(member.user for member in members)
    db.session.flush()
    rows = [row for m in members for row in _note_rows(rng, m.user.id, m.notes)]
    if rows:
        db.session.execute(insert(Note), rows)
    return People(members, deferred)
