"""The ``pricing-page`` experiment's history: who saw which pricing page when, and who upgraded.

The experiment runs for the last :data:`RUNNING_DAYS` days before the seed's ``now`` (at most
half of the history): :func:`backdate_start` moves its start there, recorded in the audit log as
an update by ``seed-demo``. While it runs, a subject is exposed once, at their first pricing-page
view, if the experiment's targeting admits them then (anonymous visitors, Free workspaces):

- a user: on the visit where they next write a note, the pricing page a few minutes before it,
  or the pricing page they open to upgrade, whichever comes first (stored as the subject's
  assignment and exposure, as a logged-in request does);
- an anonymous visitor who never signs up (``v-anon-*``): their visit's pricing-page view. The
  assignment lives in their consent cookie, so only the exposure is stored
  (``store_assignment=False``, as ``RequestFlags.finish`` does).

Variants come from the experiment's own rules (``resolve_variant(..., consent=False)`` decides
without writing); exposures carry their simulated time and are written in one transaction.

The upgrades are the ones the company's model drew for these weeks
(:attr:`People.deferred_upgrades`), at the same moments, so upgrades and MRR keep their pace.
The effect we built in: some upgrades of ``control`` users go instead, at the same moment, to
``annual-first`` users who had seen their pricing page by then and had not upgraded, so that
``annual-first``'s exposed users upgrade :data:`UPGRADE_LIFT` times as often as ``control``'s.
The results show that lift with the uncertainty its sample size leaves. Anonymous visitors
never upgrade (they would have to sign up first); some upgraded users cancel later.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flask_umetrics import get_experiment, resolve_variant
from flask_umetrics.audit import record_audit
from flask_umetrics.db.tables import experiments
from flask_umetrics.flags.recording import Served, write_served
from flask_umetrics.flags.store import bump_generation
from flask_umetrics.state import current_state

from .analytics import SCOPE
from .demo_people import Member, People, plan_at, upgrade
from .experiments import PRICING_PAGE

#: How long the experiment has been running at the seed's ``now``.
RUNNING_DAYS = 21
#: ``annual-first``'s upgrade rate over ``control``'s, among exposed users.
UPGRADE_LIFT = 1.5
#: A user opens the pricing page this long before writing the note of the same visit.
PRICING_BEFORE_NOTE_SECONDS = (60.0, 600.0)
#: The pricing page is open this long before an upgrade (``demo_events`` tracks that view).
PRICING_BEFORE_UPGRADE = timedelta(seconds=40)
ACTOR = "seed-demo"


@dataclass(frozen=True)
class Exposure:
    subject_id: str
    variant: str
    at: datetime
    #: The exposed user; None for an anonymous visitor.
    member: Member | None


@dataclass(frozen=True)
class TrafficSummary:
    """What the simulation did: when the experiment started, and every exposure."""

    started_at: datetime
    exposures: list[Exposure]


def start_of(start: datetime, now: datetime) -> datetime:
    """When the experiment started: :data:`RUNNING_DAYS` before ``now``, within the history."""
    return max(now - timedelta(days=RUNNING_DAYS), now - (now - start) / 2)


def backdate_start(key: str, started_at: datetime) -> None:
    """Record that ``key`` was created and started at ``started_at`` (audited as an update)."""
    before = get_experiment(key, scope_id=SCOPE)
    assert before is not None  # ensure_flags just made sure
    after = replace(before, created_at=started_at, started_at=started_at)
    state = current_state()
    with state.engine.begin() as connection:
        connection.execute(
            experiments.update()
            .where(experiments.c.scope_id == SCOPE, experiments.c.key == key)
            .values(created_at=started_at, started_at=started_at)
        )
        record_audit(
            connection,
            scope_id=SCOPE,
            action="experiment.update",
            target=key,
            before=before.to_json(),
            after=after.to_json(),
            actor=ACTOR,
        )
        bump_generation(connection, SCOPE)
    state.flag_cache.invalidate(SCOPE)


def _first_views(
    people: People, started_at: datetime, rng: random.Random
) -> list[tuple[Member, datetime]]:
    """Each user's first pricing-page view while the experiment runs, if they had one."""
    upgrading = {member.user.id: at for member, at in people.deferred_upgrades}
    views = []
    for member in people.members:
        seen = []
        visit = next((at for at in member.notes if at >= started_at + timedelta(minutes=10)), None)
        if visit is not None:
            seen.append(visit - timedelta(seconds=rng.uniform(*PRICING_BEFORE_NOTE_SECONDS)))
        if member.user.id in upgrading:
            seen.append(upgrading[member.user.id] - PRICING_BEFORE_UPGRADE)
        seen = [at for at in seen if at >= started_at]
        if seen:
            views.append((member, min(seen)))
    return views


def _expose_members(views: list[tuple[Member, datetime]]) -> list[Exposure]:
    exposed = []
    for member, at in views:
        user = member.user
        attributes = {"plan": plan_at(user.organization, at), "email_domain": user.email_domain}
        served = resolve_variant(
            PRICING_PAGE,
            scope_id=SCOPE,
            subject_id=str(user.id),
            consent=False,
            attributes=attributes,
        )
        if served.in_experiment and served.variant is not None:
            exposed.append(Exposure(str(user.id), served.variant, at, member))
    return exposed


def _expose_visitors(pricing_views: dict[str, datetime], started_at: datetime) -> list[Exposure]:
    exposed = []
    for visitor, at in pricing_views.items():
        if at < started_at:
            continue
        served = resolve_variant(PRICING_PAGE, scope_id=SCOPE, subject_id=visitor, consent=False)
        if served.in_experiment and served.variant is not None:
            exposed.append(Exposure(visitor, served.variant, at, None))
    return exposed


def _write(exposures: list[Exposure], bucket_version: int) -> None:
    served = [
        Served(
            e.subject_id,
            PRICING_PAGE,
            bucket_version,
            e.variant,
            "hash",
            e.at,
            store_assignment=e.member is not None,
        )
        for e in exposures
    ]
    with current_state().engine.begin() as connection:
        write_served(connection, SCOPE, served)


def _moved(control: int, treatment: int, exposed_control: int, exposed_treatment: int) -> int:
    """How many ``control`` upgrades to move so that ``treatment``'s rate is LIFT times
    ``control``'s: ``(t + k) / n_t = LIFT * (c - k) / n_c``."""
    if not exposed_control or not exposed_treatment:
        return 0
    ratio = UPGRADE_LIFT * exposed_treatment / exposed_control
    return max(0, min(control, round((ratio * control - treatment) / (1 + ratio))))


def simulate(
    rng: random.Random,
    people: People,
    pricing_views: dict[str, datetime],
    started_at: datetime,
    now: datetime,
) -> TrafficSummary:
    """Expose users and visitors, write the exposures, and make the window's upgrades (in the
    session: the caller commits). ``pricing_views``: each anonymous visitor's pricing view."""
    experiment = get_experiment(PRICING_PAGE, scope_id=SCOPE)
    assert experiment is not None and len(experiment.variant_keys) == 2
    exposures = _expose_members(_first_views(people, started_at, rng))
    exposures += _expose_visitors(pricing_views, started_at)
    _write(exposures, experiment.bucket_version)

    control, treatment = experiment.variant_keys
    exposed_users = {e.member.user.id: e for e in exposures if e.member is not None}
    upgrades = list(people.deferred_upgrades)
    variants = [_variant_of(exposed_users, member) for member, _at in upgrades]
    in_control = [index for index, variant in enumerate(variants) if variant == control]
    moved = _moved(
        len(in_control),
        variants.count(treatment),
        sum(1 for e in exposed_users.values() if e.variant == control),
        sum(1 for e in exposed_users.values() if e.variant == treatment),
    )
    upgrading = {member.user.id for member, _at in upgrades}
    for index in rng.sample(in_control, moved):
        at = upgrades[index][1]
        takers = [
            e.member
            for e in exposed_users.values()
            if e.variant == treatment
            and e.member is not None
            and e.member.user.id not in upgrading
            and not e.member.user.is_admin
            and e.at + PRICING_BEFORE_UPGRADE <= at
        ]
        if takers:
            taker = rng.choice(takers)
            upgrades[index] = (taker, at)
            upgrading.add(taker.user.id)
    for member, at in sorted(upgrades, key=lambda upgrade_: upgrade_[1]):
        upgrade(rng, member.user.organization, at, now)
    return TrafficSummary(started_at, exposures)


def _variant_of(exposed: dict[int, Exposure], member: Member) -> str | None:
    found = exposed.get(member.user.id)
    return found.variant if found is not None else None
