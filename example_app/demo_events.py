"""Demo event history that exercises every report, derived from what the seed simulated.

From the seeded users, their notes and plans it derives what the site would have tracked:
anonymous page views arriving through acquisition channels (search, ads, social, newsletter,
referrals, direct), the sign-up that identifies the visitor (merging the anonymous history),
the activation (first note), purchase (upgrade, with the pricing-page view before it) and
cancellation, the pricing-page views the experiment logged exposures for, plus visitors who
never sign up. Events that need an account (sign-ups, notes, plan changes) are only ever sent
under the user's id; anonymous ids only view pages. Written through the ingestion path in
batches, like any client's events; every timestamp is before the seed's ``now``.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import delete

from flask_umetrics import identify
from flask_umetrics.db.tables import events, person_distinct_ids, persons
from flask_umetrics.events.ingest import ingest_events
from flask_umetrics.events.user_agent import parse_user_agent
from flask_umetrics.state import current_state

from .analytics import SCOPE
from .demo_experiment import PRICING_BEFORE_UPGRADE
from .demo_people import Member
from .models import PLANS

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


@dataclass(frozen=True)
class Visit:
    """One anonymous visit: its events, and when it showed the pricing page (if it did)."""

    rows: list[dict[str, Any]]
    pricing_at: datetime | None


def _visit(rng: random.Random, visitor: str, at: datetime) -> Visit:
    """A short anonymous visit: a landing page view, maybe the pricing page after it."""
    landing = _landing(rng)
    rows = [event_row(visitor, "$pageview", at, landing)]
    pricing_at = at if landing["$pathname"] == "/pricing" else None
    if rng.random() < 0.4:
        then = at + timedelta(seconds=rng.uniform(10, 120))
        rows.append(event_row(visitor, "$pageview", then, {"$pathname": "/pricing"}))
        pricing_at = pricing_at or then
    return Visit(rows, pricing_at)


def anonymous_visitor(number: int) -> str:
    """The distinct id of the ``number``-th demo visitor who never signs up."""
    return f"v-anon-{number}"


#: The browsers of the demo's visitors: each distinct id keeps one, chosen from its id (no rng,
#: so the seeded history is the same with or without them). Their ``$browser``, ``$os`` and
#: ``$device_type`` are what ingestion would derive; the agent text itself is not stored.
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1",
)


def event_row(
    distinct_id: str, name: str, at: datetime, properties: dict[str, Any]
) -> dict[str, Any]:
    """One event as a client sends it, with a uuid derived from it (re-seeding never doubles)."""
    agent = USER_AGENTS[zlib.crc32(distinct_id.encode()) % len(USER_AGENTS)]
    return {
        "event": name,
        "distinct_id": distinct_id,
        "timestamp": at.isoformat(),
        "properties": {**properties, **dict(parse_user_agent(agent))},
        "uuid": f"demo-{distinct_id}-{name}-{at.timestamp():.6f}",
    }


def _user_rows(
    rng: random.Random, member: Member, exposed_at: datetime | None
) -> Iterator[dict[str, Any]]:
    user = member.user
    visitor = f"v-demo-{user.id}"
    arrived = user.created_at - timedelta(minutes=rng.uniform(3, 60 * 24 * 3))
    yield from _visit(rng, visitor, arrived).rows
    yield event_row(
        visitor, "$pageview", user.created_at - timedelta(seconds=30), {"$pathname": "/signup"}
    )
    user_id = str(user.id)
    yield event_row(user_id, "signed_up", user.created_at, {"plan": "free"})
    for at in member.notes:
        yield event_row(user_id, "$pageview", at - timedelta(seconds=20), {"$pathname": "/app"})
        yield event_row(user_id, "note_created", at, {"length": rng.randint(20, 2000)})
    pricing_views = {exposed_at} if exposed_at is not None else set()
    subscriptions = sorted(user.organization.subscriptions, key=lambda s: s.started_at)
    for previous, subscription in pairwise(subscriptions):
        plan = subscription.plan
        if plan == "free":
            cancelled = {"plan": plan, "previous_plan": previous.plan}
            yield event_row(user_id, "plan_cancelled", subscription.started_at, cancelled)
            continue
        pricing_views.add(subscription.started_at - PRICING_BEFORE_UPGRADE)
        upgraded = {"plan": plan, "value": PLANS[plan].price_usd}
        yield event_row(user_id, "plan_upgraded", subscription.started_at, upgraded)
    for at in sorted(pricing_views):
        yield event_row(user_id, "$pageview", at, {"$pathname": "/pricing"})


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
    """The scope's events and persons, in SQL and, on a ClickHouse event store, in ClickHouse
    (its events and mirrored persons; ``seed-demo --reset`` must not keep the old company's)."""
    state = current_state()
    with state.engine.begin() as connection:
        for table in (events, person_distinct_ids, persons):
            connection.execute(delete(table).where(table.c.scope_id == SCOPE))
    if state.event_store.name == "clickhouse":
        from flask_umetrics.engines.clickhouse.schema import DISTINCT_IDS, EVENTS, PERSONS

        client = state.event_store.client  # type: ignore[attr-defined]
        for name in (EVENTS, DISTINCT_IDS, PERSONS):
            client.command(
                f"DELETE FROM {name} WHERE scope_id = {{scope:String}}",
                parameters={"scope": SCOPE},
                settings={"lightweight_deletes_sync": 2},
            )


def visitor_visits(
    rng: random.Random, start: datetime, now: datetime, visitors: int
) -> dict[str, Visit]:
    """One visit by each of ``visitors`` people who never sign up, spread over the history."""
    span = (now - start - timedelta(minutes=5)).total_seconds()
    return {
        anonymous_visitor(number): _visit(
            rng, anonymous_visitor(number), start + timedelta(seconds=span * rng.random())
        )
        for number in range(visitors)
    }


def seed_events(
    rng: random.Random,
    members: list[Member],
    visits: dict[str, Visit],
    exposed_at: dict[str, datetime],
) -> int:
    """Track every member's history and the anonymous ``visits``; identify each member.

    ``exposed_at``: when each exposed user (by id) saw the pricing page of the experiment.
    """
    rows: list[dict[str, Any]] = []
    for member in members:
        rows.extend(_user_rows(rng, member, exposed_at.get(str(member.user.id))))
    for visit in visits.values():
        rows.extend(visit.rows)
    stored = ingest(rows)
    for member in members:  # the sign-up identified each visitor: merge their anonymous history
        user = member.user
        identify(
            str(user.id),
            anon_id=f"v-demo-{user.id}",
            scope_id=SCOPE,
            traits={"plan": user.plan, "email_domain": user.email_domain},
        )
    return stored
