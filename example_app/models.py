"""Acme Notes' own data: users in organizations, their subscriptions, and their notes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .database import UTCDateTime, db, utcnow

#: Months charged for a year paid up front.
MONTHS_BILLED_PER_YEAR = 10


@dataclass(frozen=True)
class Plan:
    """A price-list entry. Subscriptions copy the price, so a later price change keeps MRR."""

    key: str
    name: str
    price_cents: int
    blurb: str
    features: tuple[str, ...]

    @property
    def price_usd(self) -> int:
        return self.price_cents // 100

    @property
    def annual_price_usd(self) -> int:
        """A year paid up front: two months free (what ``annual-first`` pricing leads with)."""
        return self.price_usd * MONTHS_BILLED_PER_YEAR


PLANS: dict[str, Plan] = {
    "free": Plan(
        "free",
        "Free",
        0,
        "For trying things out.",
        ("Unlimited notes", "1 member", "Community support"),
    ),
    "pro": Plan(
        "pro",
        "Pro",
        29_00,
        "For people who live in their notes.",
        ("Everything in Free", "Full-text search", "Email support"),
    ),
    "team": Plan(
        "team",
        "Team",
        99_00,
        "For teams that share what they know.",
        ("Everything in Pro", "Up to 20 members", "Priority support"),
    ),
}
PAID_PLANS: tuple[str, ...] = tuple(key for key, plan in PLANS.items() if plan.price_cents > 0)

ACTIVE = "active"
CANCELLED = "cancelled"


class Organization(db.Model):  # type: ignore[name-defined,misc]
    """The billing account: a user's workspace. It has exactly one active subscription."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[User]] = relationship(back_populates="organization")
    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="organization", order_by="Subscription.started_at"
    )

    @property
    def subscription(self) -> Subscription | None:
        """The active subscription (None only for an organization still being set up)."""
        return next((s for s in self.subscriptions if s.status == ACTIVE), None)

    @property
    def plan(self) -> str:
        subscription = self.subscription
        return subscription.plan if subscription is not None else "free"

    def change_plan(self, plan: str, at: datetime | None = None) -> Subscription:
        """End the active subscription and start one on ``plan``.

        Subscriptions are never edited in place: keeping ``started_at``/``cancelled_at`` of every
        one lets MRR and paying customers be computed for any day in the past.
        """
        when = at or utcnow()
        current = self.subscription
        if current is not None:
            current.status = CANCELLED
            current.cancelled_at = when
        subscription = Subscription(
            plan=plan, price_cents=PLANS[plan].price_cents, status=ACTIVE, started_at=when
        )
        self.subscriptions.append(subscription)
        return subscription


class Subscription(db.Model):  # type: ignore[name-defined,misc]
    """One period on one plan; ``cancelled_at`` closes it."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    plan: Mapped[str] = mapped_column(String(20))
    price_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=ACTIVE, index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organization: Mapped[Organization] = relationship(back_populates="subscriptions")


class User(db.Model):  # type: ignore[name-defined,misc]
    """Someone who signed up. ``is_admin`` marks Acme staff, who may read the metrics."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)

    organization: Mapped[Organization] = relationship(back_populates="members")
    notes: Mapped[list[Note]] = relationship(
        back_populates="user", order_by="Note.created_at.desc()"
    )

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def plan(self) -> str:
        return self.organization.plan

    @property
    def email_domain(self) -> str:
        return self.email.rpartition("@")[2]


class Note(db.Model):  # type: ignore[name-defined,misc]
    """The product itself; creating notes is the activity the metrics watch."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    user: Mapped[User] = relationship(back_populates="notes")
