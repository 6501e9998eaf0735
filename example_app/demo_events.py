"""Demo event history that exercises every report.

From the seeded users and their notes and plans it derives what the site would have tracked:
anonymous page views arriving through acquisition channels (search, ads, social, newsletter,
referrals, direct), the sign-up that identifies the visitor (merging the anonymous history),
the activation (first note) and purchase (upgrade) funnel, weekly returns, plus visitors who
never sign up. Written through the ingestion path in batches, like any client's events.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from flask_umetrics import identify
from flask_umetrics.db.tables import events, person_distinct_ids, persons
from flask_umetrics.events.ingest import ingest_events
from flask_umetrics.state import current_state

from .analytics import SCOPE
from .database import db
from .models import PLANS, Note, Organization, Subscription, User

BATCH = 1000


@dataclass(frozen=True)
class Channel:
    weight: float
    referrer: str | None = None
    utm: tuple[tuple[str, str], ...] = ()


CHANNELS = {
    "organic_search": Channel(0.30, referrer="https://www.google.com/"),
    "paid_search": Channel(
        0.15,
        utm=(("utm_source", "google"), ("utm_medium", "cpc"), ("utm_campaign", "notes-spring")),
    ),
    "social": Channel(0.12, referrer="https://t.co/acme"),
    "email": Channel(
        0.10,
        utm=(
            ("utm_source", "newsletter"),
            ("utm_medium", "email"),
            ("utm_campaign", "monthly-digest"),
        ),
    ),
    "referral": Channel(0.08, referrer="https://www.producthunt.com/posts/acme-notes"),
    "direct": Channel(0.25),
}


def _landing(rng: random.Random) -> dict[str, Any]:
    name = rng.choices(list(CHANNELS), [c.weight for c in CHANNELS.values()])[0]
    channel = CHANNELS[name]
    properties: dict[str, Any] = {"$pathname": rng.choice(["/", "/", "/pricing"])}
    if channel.referrer:
        properties["$referrer"] = channel.referrer
    properties.update(dict(channel.utm))
    return properties


def _visit(rng: random.Random, visitor: str, at: datetime) -> list[dict[str, Any]]:
    """A short anonymous visit: a landing page view, maybe the pricing page after it."""
    rows = [event_row(visitor, "$pageview", at, _landing(rng))]
    if rng.random() < 0.4:
        rows.append(
            event_row(
                visitor,
                "$pageview",
                at + timedelta(seconds=rng.uniform(10, 120)),
                {"$pathname": "/pricing"},
            )
        )
    return rows


def anonymous_visitor(number: int) -> str:
    """The distinct id of the ``number``-th demo visitor who never signs up."""
    return f"v-anon-{number}"


def event_row(
    distinct_id: str, name: str, at: datetime, properties: dict[str, Any]
) -> dict[str, Any]:
    """One event as a client sends it, with a uuid derived from it (re-seeding never doubles)."""
    return {
        "event": name,
        "distinct_id": distinct_id,
        "timestamp": at.isoformat(),
        "properties": properties,
        "uuid": f"demo-{distinct_id}-{name}-{at.timestamp():.6f}",
    }


def _user_rows(
    rng: random.Random, user: User, notes: list[datetime], upgrades: list[Subscription]
) -> Iterator[dict[str, Any]]:
    visitor = f"v-demo-{user.id}"
    arrived = user.created_at - timedelta(minutes=rng.uniform(3, 60 * 24 * 3))
    yield from _visit(rng, visitor, arrived)
    yield event_row(
        visitor, "$pageview", user.created_at - timedelta(seconds=30), {"$pathname": "/signup"}
    )
    user_id = str(user.id)
    yield event_row(user_id, "signed_up", user.created_at, {"plan": "free"})
    for at in notes:
        yield event_row(user_id, "$pageview", at - timedelta(seconds=20), {"$pathname": "/app"})
        yield event_row(user_id, "note_created", at, {"length": rng.randint(20, 2000)})
    for subscription in upgrades:
        yield event_row(
            user_id,
            "$pageview",
            subscription.started_at - timedelta(seconds=40),
            {"$pathname": "/pricing"},
        )
        yield event_row(
            user_id,
            "plan_upgraded",
            subscription.started_at,
            {"plan": subscription.plan, "value": PLANS[subscription.plan].price_usd},
        )


def ingest(rows: list[dict[str, Any]]) -> int:
    """Store ``rows`` through the ingestion path in batches; any rejection is a seeding bug."""
    stored = 0
    for offset in range(0, len(rows), BATCH):
        result = ingest_events(rows[offset : offset + BATCH], scope_id=SCOPE, any_age=True)
        if result.rejected:
            raise RuntimeError(f"demo events rejected: {result.rejected[:3]}")
        stored += result.accepted
    return stored


def wipe_events() -> None:
    with current_state().engine.begin() as connection:
        for table in (events, person_distinct_ids, persons):
            connection.execute(delete(table).where(table.c.scope_id == SCOPE))


def seed_events(rng: random.Random, start: datetime, end: datetime, visitors: int) -> int:
    """Track the history of every seeded user plus ``visitors`` who never sign up."""
    # Organizations and subscriptions come in two queries, not two per user.
    users = db.session.scalars(
        select(User)
        .options(selectinload(User.organization).selectinload(Organization.subscriptions))
        .order_by(User.id)
    ).all()
    note_times: dict[int, list[datetime]] = {}
    for user_id, created_at in db.session.execute(select(Note.user_id, Note.created_at)):
        note_times.setdefault(user_id, []).append(created_at)
    rows: list[dict[str, Any]] = []
    for user in users:
        paid = [s for s in user.organization.subscriptions if s.plan != "free"]
        rows.extend(_user_rows(rng, user, sorted(note_times.get(user.id, [])), paid))
    span = (end - start).total_seconds()
    for number in range(visitors):
        at = start + timedelta(seconds=span * rng.random())
        rows.extend(_visit(rng, anonymous_visitor(number), at))
    stored = ingest([row for row in rows if row["timestamp"] < end.isoformat()])
    for user in users:  # the sign-up identified each visitor: merge their anonymous history
        identify(
            str(user.id),
            anon_id=f"v-demo-{user.id}",
            scope_id=SCOPE,
            traits={"plan": user.plan, "email_domain": user.email_domain},
        )
    return stored
