"""The business metrics as SQL over the app's tables, each answerable "as of" any moment.

The live stat collectors call these with ``at=None`` (now); ``seed-demo`` calls them with past
moments to backfill history, so both use one definition of every metric.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, union

from .database import db, utcnow
from .models import ACTIVE, Note, Subscription, User

WINDOW = timedelta(days=7)


def _subscription_active(at: datetime | None) -> ColumnElement[bool]:
    """Live: the ``active`` status. In the past: started by ``at`` and not yet cancelled then."""
    if at is None:
        return Subscription.status == ACTIVE
    return and_(
        Subscription.started_at <= at,
        or_(Subscription.cancelled_at.is_(None), Subscription.cancelled_at > at),
    )


def users_total(at: datetime | None = None) -> int:
    """Every account created so far."""
    query = select(func.count(User.id))
    if at is not None:
        query = query.where(User.created_at <= at)
    return db.session.scalar(query) or 0


def signups_7d(at: datetime | None = None) -> int:
    """Accounts created in the 7 days up to ``at``."""
    end = at or utcnow()
    query = select(func.count(User.id)).where(
        User.created_at > end - WINDOW, User.created_at <= end
    )
    return db.session.scalar(query) or 0


def active_users_7d(at: datetime | None = None) -> int:
    """Users seen in the 7 days up to ``at``.

    Live, that is ``last_seen_at``. A past day has no stored visits, so there a user counts as
    active when they signed up, wrote a note or changed plan in the window; ``seed-demo`` sets
    each user's ``last_seen_at`` to their last such activity, so both readings agree on the
    seeded data.
    """
    end = at or utcnow()
    if at is None:
        live = select(func.count(User.id)).where(User.last_seen_at > end - WINDOW)
        return db.session.scalar(live) or 0
    wrote = select(Note.user_id.label("user_id")).where(
        Note.created_at > end - WINDOW, Note.created_at <= end
    )
    joined = select(User.id.label("user_id")).where(
        User.created_at > end - WINDOW, User.created_at <= end
    )
    changed = (
        select(User.id.label("user_id"))
        .join(Subscription, Subscription.organization_id == User.organization_id)
        .where(Subscription.started_at > end - WINDOW, Subscription.started_at <= end)
    )
    active = union(wrote, joined, changed).subquery()
    return db.session.scalar(select(func.count()).select_from(active)) or 0


def mrr(at: datetime | None = None) -> float:
    """Monthly recurring revenue in USD: the prices of the active paid subscriptions."""
    query = select(func.coalesce(func.sum(Subscription.price_cents), 0)).where(
        _subscription_active(at), Subscription.price_cents > 0
    )
    return (db.session.scalar(query) or 0) / 100


def paying_customers(at: datetime | None = None) -> int:
    """Organizations with an active paid subscription."""
    query = select(func.count(func.distinct(Subscription.organization_id))).where(
        _subscription_active(at), Subscription.price_cents > 0
    )
    return db.session.scalar(query) or 0


def notes_total(at: datetime | None = None) -> int:
    """Every note written so far."""
    query = select(func.count(Note.id))
    if at is not None:
        query = query.where(Note.created_at <= at)
    return db.session.scalar(query) or 0


#: Metric key -> its as-of function; the keys are the stat collectors' keys.
METRICS: dict[str, Callable[[datetime | None], float]] = {
    "users_total": users_total,
    "signups_7d": signups_7d,
    "active_users_7d": active_users_7d,
    "mrr": mrr,
    "paying_customers": paying_customers,
    "notes_total": notes_total,
}
