"""Forward stored first-party events to a scope's GA4 stream, once each, behind a watermark.

Each GA4 connection keeps ``mp_forwarded_through``: the highest ``umetrics_events.id`` up to
which every event named in ``UMETRICS_GA4_FORWARD_EVENTS`` was handled — sent, or skipped on
purpose (invalid for GA4, no consent, older than the 72 hours GA4 accepts). A run reads the
events after it in pages ordered by ``id`` (never the whole table), hands them to
:class:`~.measurement_protocol.MeasurementProtocolForwarder`, and moves the watermark after each
page only past what was handled: a payload GA4 did not take (5xx, network) holds the watermark
before its first event, so the next run sends it again. Delivery is therefore at least once —
events of other clients sent in the same page as a failed payload are sent again too.

Consent: events dropped for Do-Not-Track are never stored; of the stored ones, an event is
forwarded only if neither its own properties nor its person's properties carry
``"$consent": false`` (or ``"false"``). Parameters: properties starting with ``$`` (internal)
and the personal-data keys :data:`~flask_umetrics.events.privacy.PII_KEYS` are never sent.
The GA4 ``client_id`` is :func:`~.measurement_protocol.pseudonymous_client_id` of the scope and
distinct id, never the distinct id itself; no ``user_id`` is sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, func, select, update
from sqlalchemy.sql import ColumnElement

from ..db.tables import events, ga4_connections, person_distinct_ids, persons
from ..db.types import utcnow
from ..engines import require_sql_events
from ..errors import UMetricsError
from ..events.privacy import PII_KEYS
from ..events.tracking import flush
from ..events.validation import to_micros
from ..queries.sql import prop_text
from ..state import current_state, resolve_scope
from .gtag import is_measurement_id
from .measurement_protocol import (
    MAX_BACKDATE_MICROS,
    MeasurementProtocolForwarder,
    MPValidationMessage,
    parse_event_names,
)
from .secrets import decrypt_secret, mp_secret_purpose

logger = logging.getLogger(__name__)

#: Events examined per scope in one call; the rest waits for the next run.
DEFAULT_LIMIT = 5000
#: Events read per SQL query.
PAGE_SIZE = 500
#: Invalid events listed one by one in a result (all are counted).
MAX_LISTED_INVALID = 50

SKIP_TOO_OLD = "older than the 72 hours GA4 accepts"
SKIP_NO_CONSENT = "no consent ($consent: false)"
CONSENT_PROPERTY = "$consent"


@dataclass(frozen=True)
class InvalidEvent:
    """A stored event GA4 would drop: skipped, reported, and never tried again."""

    event_id: int
    uuid: str | None
    event: str
    messages: tuple[MPValidationMessage, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "uuid": self.uuid,
            "event": self.event,
            "messages": [message.to_json() for message in self.messages],
        }


@dataclass
class ForwardResult:
    """What one :func:`forward_scope` call did for a scope.

    ``reason`` is set when the scope was not forwarded at all (not connected, no measurement id
    or Measurement Protocol secret, nothing selected); ``skipped`` counts events per reason;
    ``failed`` counts events GA4 did not take (they are sent again next time); ``remaining``
    counts selected events still after the watermark when the call ended.
    """

    scope_id: str
    dry_run: bool = False
    reason: str | None = None
    sent: int = 0
    failed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    invalid: list[InvalidEvent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    remaining: int = 0
    watermark: int | None = None

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope_id": self.scope_id,
            "dry_run": self.dry_run,
            "reason": self.reason,
            "sent": self.sent,
            "failed": self.failed,
            "skipped": dict(self.skipped),
            "invalid": [event.to_dict() for event in self.invalid],
            "errors": list(self.errors),
            "requests": self.requests,
            "remaining": self.remaining,
            "watermark": self.watermark,
        }


@dataclass(frozen=True)
class _Target:
    measurement_id: str
    api_secret: str = field(repr=False)
    watermark: int | None


def forward_scope(
    scope_id: str | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    dry_run: bool = False,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ForwardResult:
    """Forward the scope's selected events stored after its watermark (at most ``limit``).

    ``dry_run`` posts to GA4's validation server (``/debug/mp/collect``, which records
    nothing), reports what it would reject, and leaves the watermark where it is. Delivery
    problems are reported in the result, never raised.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    require_sql_events("GA4 Measurement Protocol forwarding")
    state = current_state()
    scope = resolve_scope(scope_id)
    result = ForwardResult(scope, dry_run=dry_run)
    names = sorted(parse_event_names(state.settings["UMETRICS_GA4_FORWARD_EVENTS"]))
    if not names:
        result.reason = "UMETRICS_GA4_FORWARD_EVENTS is empty: no event is selected"
        return result
    flush()  # events tracked by this process count too
    target = _target(scope, result)
    if target is None:
        result.remaining = _count_after(scope, names, result.watermark)
        logger.info("GA4 forwarding %s: not forwarded (%s)", scope, result.reason)
        return result
    moment = now or utcnow()
    forwarder = MeasurementProtocolForwarder.from_settings(
        state.settings,
        measurement_id_for_scope=lambda _scope: target.measurement_id,
        api_secret_for_scope=lambda _scope: target.api_secret,
        debug=dry_run,
        sleep=sleep,
        clock=lambda: moment,
    )
    cursor = target.watermark
    cursor, ok = _skip_too_old(scope, names, cursor, to_micros(moment), result, dry_run=dry_run)
    examined = 0 if ok else limit  # not ok: another run moved the watermark meanwhile
    while examined < limit:
        rows = _page(scope, names, cursor, min(PAGE_SIZE, limit - examined))
        if not rows:
            break
        examined += len(rows)
        handled_through, stop = _forward_page(forwarder, scope, rows, result)
        if dry_run:  # nothing is stored: read on as if every event had been handled
            cursor = rows[-1].id
            continue
        if handled_through is not None:
            if not _move_watermark(scope, cursor, handled_through, result):
                break
            cursor = handled_through
        if stop:
            break
    # Read back rather than trust ``cursor``: another run may have moved it meanwhile.
    result.watermark = _stored_watermark(scope) if not dry_run else target.watermark
    result.remaining = _count_after(scope, names, result.watermark)
    logger.info(
        "GA4 forwarding %s%s: sent %d, skipped %d, failed %d, remaining %d",
        scope,
        " (dry run)" if dry_run else "",
        result.sent,
        result.skipped_total,
        result.failed,
        result.remaining,
    )
    return result


def forwarding_scopes() -> list[str]:
    """Scopes with a linked GA4 property (the ones the scheduled job visits)."""
    from .sync import linked_scopes

    return linked_scopes()


def forward_all(
    *, limit: int = DEFAULT_LIMIT, dry_run: bool = False, now: datetime | None = None
) -> list[ForwardResult]:
    """:func:`forward_scope` for every linked scope; one scope's error never stops the others."""
    results = []
    for scope in forwarding_scopes():
        try:
            results.append(forward_scope(scope, limit=limit, dry_run=dry_run, now=now))
        except UMetricsError as exc:
            message = getattr(exc, "message", None) or str(exc)
            results.append(ForwardResult(scope, dry_run=dry_run, reason=message))
    return results


# --- steps ---------------------------------------------------------------------------------------


def _target(scope: str, result: ForwardResult) -> _Target | None:
    """The scope's measurement id, MP secret and watermark; None (with ``reason``) if unusable."""
    with current_state().engine.connect() as db:
        row = db.execute(
            select(
                ga4_connections.c.property_id,
                ga4_connections.c.measurement_id,
                ga4_connections.c.mp_secret_encrypted,
                ga4_connections.c.mp_forwarded_through,
            ).where(ga4_connections.c.scope_id == scope)
        ).first()
    if row is None:
        result.reason = "no GA4 connection"
        return None
    result.watermark = row.mp_forwarded_through
    if row.property_id is None:
        result.reason = "no GA4 property linked"
        return None
    if not is_measurement_id(row.measurement_id):
        result.reason = "the linked property has no web stream measurement id"
        return None
    if row.mp_secret_encrypted is None:
        result.reason = (
            "no Measurement Protocol secret: provision the property (POST /ga4/provision) to "
            "create one"
        )
        return None
    try:
        secret = decrypt_secret(row.mp_secret_encrypted, purpose=mp_secret_purpose(scope))
    except UMetricsError as exc:
        result.reason = getattr(exc, "message", None) or str(exc)
        return None
    return _Target(row.measurement_id, secret, row.mp_forwarded_through)


def _selected(scope: str, names: Sequence[str], after: int | None) -> list[ColumnElement[bool]]:
    conditions = [events.c.scope_id == scope, events.c.event.in_(names)]
    if after is not None:
        conditions.append(events.c.id > after)
    return conditions


def _stored_watermark(scope: str) -> int | None:
    with current_state().engine.connect() as db:
        value = db.execute(
            select(ga4_connections.c.mp_forwarded_through).where(
                ga4_connections.c.scope_id == scope
            )
        ).scalar()
    return None if value is None else int(value)


def _count_after(scope: str, names: Sequence[str], after: int | None) -> int:
    with current_state().engine.connect() as db:
        count = db.execute(
            select(func.count()).select_from(events).where(*_selected(scope, names, after))
        ).scalar()
    return int(count or 0)


def _skip_too_old(
    scope: str,
    names: Sequence[str],
    cursor: int | None,
    now_micros: int,
    result: ForwardResult,
    *,
    dry_run: bool,
) -> tuple[int | None, bool]:
    """Step the watermark over the run of events older than GA4's 72 hours, in two aggregates.

    Only the events before the first fresh one are passed (older events stored later, e.g. an
    import, wait for the page loop, which skips them one by one): the watermark never moves
    past an event that was not handled. Returns the cursor, and False when another run moved
    the watermark meanwhile.
    """
    cutoff = now_micros - MAX_BACKDATE_MICROS
    selected = _selected(scope, names, cursor)
    with current_state().engine.connect() as db:
        first_fresh = db.execute(
            select(func.min(events.c.id)).where(*selected, events.c.ts >= cutoff)
        ).scalar()
        stale = select(func.count(), func.max(events.c.id)).where(*selected)
        if first_fresh is not None:
            stale = stale.where(events.c.id < first_fresh)
        count, last = db.execute(stale).one()
    if not count:
        return cursor, True
    if not dry_run and not _move_watermark(scope, cursor, int(last), result):
        return cursor, False
    result.skip(SKIP_TOO_OLD, int(count))
    return int(last), True


def _page(scope: str, names: Sequence[str], after: int | None, size: int) -> list[Row[Any]]:
    """The next ``size`` selected events after ``after``, with both consent markers."""
    joined = events.outerjoin(
        person_distinct_ids,
        and_(
            person_distinct_ids.c.scope_id == events.c.scope_id,
            person_distinct_ids.c.distinct_id == events.c.distinct_id,
        ),
    ).outerjoin(persons, persons.c.id == person_distinct_ids.c.person_id)
    query = (
        select(
            events.c.id,
            events.c.uuid,
            events.c.event,
            events.c.distinct_id,
            events.c.ts,
            events.c.properties,
            prop_text(events.c.properties, CONSENT_PROPERTY).label("event_consent"),
            prop_text(persons.c.properties, CONSENT_PROPERTY).label("person_consent"),
        )
        .select_from(joined)
        .where(*_selected(scope, names, after))
        .order_by(events.c.id)
        .limit(size)
    )
    with current_state().engine.connect() as db:
        return list(db.execute(query))


def _params(properties: Mapping[str, Any] | None) -> dict[str, Any]:
    """The properties GA4 may see: no ``$`` internals, no personal data."""
    return {
        key: value
        for key, value in (properties or {}).items()
        if not key.startswith("$") and key not in PII_KEYS
    }


def _forward_page(
    forwarder: MeasurementProtocolForwarder,
    scope: str,
    rows: Sequence[Row[Any]],
    result: ForwardResult,
) -> tuple[int | None, bool]:
    """Send one page; the id up to which every event was handled, and whether to stop.

    Events are grouped per distinct id (one GA4 client per request, Google's rule). After the
    first payload GA4 did not take, the rest of the page is left for the next run (a dry run
    goes on). Skips are counted only for events the watermark passes, so a skipped event is
    reported once.
    """
    skips: list[tuple[int, str, InvalidEvent | None]] = []
    by_client: dict[str, list[Row[Any]]] = {}
    for row in rows:
        if "false" in (row.event_consent, row.person_consent):
            skips.append((row.id, SKIP_NO_CONSENT, None))
        else:
            by_client.setdefault(row.distinct_id, []).append(row)
    unhandled: list[int] = []
    stop = False
    for distinct_id, group in by_client.items():
        if stop and not forwarder.debug:
            unhandled.extend(row.id for row in group)
            continue
        outcome = forwarder.forward(
            scope,
            [
                {
                    "event": row.event,
                    "distinct_id": distinct_id,
                    "ts": row.ts,
                    "properties": _params(row.properties),
                    "uuid": row.uuid,
                }
                for row in group
            ],
        )
        for skipped in outcome.skipped:
            row = group[skipped.index]
            first = skipped.messages[0]
            invalid = InvalidEvent(row.id, row.uuid, row.event, skipped.messages)
            skips.append(
                (row.id, f"invalid: {first.field_path} ({first.validation_code})", invalid)
            )
        skipped_at = {skipped.index for skipped in outcome.skipped}
        valid = [row for index, row in enumerate(group) if index not in skipped_at]
        report = outcome.report
        if report is None:
            if valid:  # the forwarder refused to send at all (it said why)
                unhandled.extend(row.id for row in valid)
                result.failed += len(valid)
                result.errors.extend(outcome.errors)
                stop = True
            continue
        result.requests += report.requests
        position = 0
        for payload in report.outcomes:
            batch = valid[position : position + payload.events]
            position += payload.events
            if payload.ok:
                result.sent += len(batch)
                continue
            result.failed += len(batch)
            unhandled.extend(row.id for row in batch)
            stop = True
            if payload.error is not None:
                result.errors.append(f"payload {payload.index}: {payload.error}")
            result.errors.extend(
                f"{m.field_path}: {m.description} ({m.validation_code})"
                for m in payload.validation_messages
            )
    first_unhandled = min(unhandled) if unhandled else None
    counted_up_to = None if forwarder.debug else first_unhandled
    for event_id, reason, listed in sorted(skips, key=lambda skip: skip[0]):
        if counted_up_to is not None and event_id > counted_up_to:
            break
        result.skip(reason)
        if listed is not None and len(result.invalid) < MAX_LISTED_INVALID:
            result.invalid.append(listed)
    if first_unhandled is None:
        return rows[-1].id, stop
    handled = [row.id for row in rows if row.id < first_unhandled]
    return (max(handled) if handled else None), True


def _move_watermark(scope: str, old: int | None, new: int, result: ForwardResult) -> bool:
    """Compare-and-set, so two runs at once never move the watermark backwards."""
    with current_state().engine.begin() as db:
        moved = db.execute(
            update(ga4_connections)
            .where(
                ga4_connections.c.scope_id == scope,
                ga4_connections.c.mp_forwarded_through.is_not_distinct_from(old),
            )
            .values(mp_forwarded_through=new)
        ).rowcount
    if not moved:
        result.errors.append("another forwarding run moved the watermark; stopped")
        logger.warning("GA4 forwarding %s: %s", scope, result.errors[-1])
    return bool(moved)
