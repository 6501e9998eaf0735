"""The ``pricing-page`` experiment's history: who saw which pricing page when, and who upgraded.

The experiment runs for the last :data:`RUNNING_DAYS` days before the seed's ``now`` (at most
half of the history): :func:`backdate_start` moves its start there, recorded in the audit log as
an update by ``seed-demo``. While it runs, a subject is exposed once, at their first pricing-page
view, if the experiment's targeting admits them then (anonymous visitors, Free workspaces):

- a user: on the visit where they next write a note, the pricing page a few minutes before it
  (stored as the subject's assignment and exposure, as a logged-in request does);
- an anonymous visitor who never signs up (``v-anon-*``): their visit's pricing-page view. The
  assignment lives in their consent cookie, so only the exposure is stored
  (``store_assignment=False``, as ``RequestFlags.finish`` does).

Variants come from the experiment's own rules (``resolve_variant(..., consent=False)`` decides
without writing); exposures carry their simulated time and are written in one transaction.

Only users can upgrade (an anonymous visitor must sign up first). The experiment decides exactly
as many upgrades as the base model drew for its window (:attr:`People.deferred_upgrades`), so
upgrades keep their pace and MRR has no step. They are shared between the variants so that
``annual-first``'s exposed users upgrade :data:`UPGRADE_LIFT` times as often as ``control``'s:
the effect we built in, visible in the results with the uncertainty its sample size leaves. An
upgrade happens on a later visit of the exposed user (the pricing page again, then the upgrade),
before they stop using the product; some cancel later, like any customer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
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


@dataclass
class TrafficSummary:
    """What the simulation did: exposures and upgrades per variant."""

    started_at: datetime
    exposures: list[Exposure] = field(default_factory=list)
    exposed: dict[str, int] = field(default_factory=dict)
    upgraded: dict[str, int] = field(default_factory=dict)


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


def _expose_members(
    rng: random.Random, members: list[Member], started_at: datetime
) -> list[Exposure]:
    exposed = []
    for member in members:
        visit = next((at for at in member.notes if at >= started_at + timedelta(minutes=10)), None)
        if visit is None:
            continue
        at = visit - timedelta(seconds=rng.uniform(*PRICING_BEFORE_NOTE_SECONDS))
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


def _shares(upgrades: int, control: int, treatment: int) -> tuple[int, int]:
    """``upgrades`` split so the treatment's rate is :data:`UPGRADE_LIFT` times the control's."""
    upgrades = min(upgrades, control + treatment)
    if not control or not treatment:
        return (upgrades, 0) if control else (0, upgrades)
    in_control = round(upgrades * control / (control + UPGRADE_LIFT * treatment))
    in_control = max(upgrades - treatment, min(control, in_control))
    return in_control, upgrades - in_control


def simulate(
    rng: random.Random,
    people: People,
    pricing_views: dict[str, datetime],
    started_at: datetime,
    now: datetime,
) -> TrafficSummary:
    """Expose users and visitors, write the exposures, and upgrade the chosen users (in the
    session: the caller commits). ``pricing_views``: each anonymous visitor's pricing view."""
    experiment = get_experiment(PRICING_PAGE, scope_id=SCOPE)
    assert experiment is not None and len(experiment.variant_keys) == 2
    exposures = _expose_members(rng, people.members, started_at)
    exposures += _expose_visitors(pricing_views, started_at)
    _write(exposures, experiment.bucket_version)

    summary = TrafficSummary(started_at, exposures)
    control, treatment = experiment.variant_keys
    # Who can upgrade: exposed users (visitors would have to sign up first), not Acme staff.
    users = {
        key: [e for e in exposures if e.variant == key and e.member and not e.member.user.is_admin]
        for key in experiment.variant_keys
    }
    shares = _shares(people.deferred_upgrades, len(users[control]), len(users[treatment]))
    for key, share in zip((control, treatment), shares, strict=True):
        summary.exposed[key] = sum(1 for e in exposures if e.variant == key)
        summary.upgraded[key] = share
        for exposure in rng.sample(users[key], share):
            assert exposure.member is not None
            member = exposure.member
            earliest = exposure.at + PRICING_BEFORE_UPGRADE
            at = earliest + (member.active_until - earliest) * rng.random()
            upgrade(rng, member.user.organization, at, now)
    return summary
