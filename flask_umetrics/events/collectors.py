"""Built-in stat collectors fed by the events: DAU, WAU, MAU, events and new persons today.

Each is a plain ``collect(scope_id) -> float`` that runs one SQL query, so a scheduled snapshot
puts event figures in the stat store next to the app's own metrics. "Today" is the calendar day
in ``UMETRICS_TIMEZONE`` of :func:`current_time`, which tests replace to freeze the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import aliased

from ..db.tables import events, person_distinct_ids
from ..db.types import utcnow
from ..engines.clickhouse.runner import is_clickhouse
from ..queries.active import WINDOWS, active_users
from ..queries.context import ReportContext, report_context
from ..queries.sql import person_events
from ..state import current_state, resolve_scope
from ..stats.collectors import CollectFunction, CollectorRegistry, StatCollector
from .validation import to_micros

PREFIX = "events."


def current_time() -> datetime:
    """The clock of the built-in collectors (monkeypatch it in tests)."""
    return utcnow()


def _days(days: int) -> tuple[datetime, datetime]:
    """``[midnight days-1 days before today, midnight after today)`` in UMETRICS_TIMEZONE."""
    zone = ZoneInfo(current_state().settings.timezone)
    today: date = current_time().astimezone(zone).date()
    start = datetime.combine(today - timedelta(days=days - 1), time(0), tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time(0), tzinfo=zone)
    return start, end


def _active(scope_id: str, window: str) -> float:
    date_from, date_to = _days(WINDOWS[window])
    ctx = report_context(scope_id=scope_id, date_from=date_from, date_to=date_to)
    return float(active_users(ctx).count)


def _today_context(scope_id: str) -> ReportContext:
    date_from, date_to = _days(1)
    return report_context(scope_id=scope_id, date_from=date_from, date_to=date_to)


def dau(scope_id: str) -> float:
    """Persons with an active event today."""
    return _active(scope_id, "dau")


def wau(scope_id: str) -> float:
    """Persons with an active event in the 7 days ending today (inclusive)."""
    return _active(scope_id, "wau")


def mau(scope_id: str) -> float:
    """Persons with an active event in the 30 days ending today (inclusive)."""
    return _active(scope_id, "mau")


def events_today(scope_id: str) -> float:
    """Events (active or not) stored for today so far."""
    if is_clickhouse():
        from ..engines.clickhouse.cohorts import raw_events_in_range

        return float(raw_events_in_range(_today_context(scope_id)))
    start, end = (to_micros(moment) for moment in _days(1))
    query = select(func.count()).where(
        events.c.scope_id == resolve_scope(scope_id), events.c.ts >= start, events.c.ts < end
    )
    with current_state().engine.connect() as connection:
        return float(connection.execute(query).scalar_one())


def new_persons_today(scope_id: str) -> float:
    """Persons with an event (active or not) today and none before today, across all their
    merged distinct ids."""
    if is_clickhouse():
        # No event before today and one today: the person's first event ever is today.
        from ..engines.clickhouse.cohorts import first_seen_in_range

        return float(first_seen_in_range(_today_context(scope_id)))
    scope = resolve_scope(scope_id)
    start, end = (to_micros(moment) for moment in _days(1))
    today = person_events(scope).where(events.c.ts >= start, events.c.ts < end).subquery()
    earlier_event, earlier_id = aliased(events), aliased(person_distinct_ids)
    earlier = (
        select(earlier_event.c.id)
        .join(
            earlier_id,
            and_(
                earlier_id.c.scope_id == earlier_event.c.scope_id,
                earlier_id.c.distinct_id == earlier_event.c.distinct_id,
            ),
        )
        .where(
            earlier_event.c.scope_id == scope,
            earlier_event.c.ts < start,
            earlier_id.c.person_id == today.c.person_id,
        )
    )
    query = select(func.count(today.c.person_id.distinct())).where(~exists(earlier))
    with current_state().engine.connect() as connection:
        return float(connection.execute(query).scalar_one())


@dataclass(frozen=True)
class BuiltinCollector:
    name: str
    collect: CollectFunction
    label: str


BUILTIN_COLLECTORS: tuple[BuiltinCollector, ...] = (
    BuiltinCollector("dau", dau, "Daily active users"),
    BuiltinCollector("wau", wau, "Weekly active users (7 days)"),
    BuiltinCollector("mau", mau, "Monthly active users (30 days)"),
    BuiltinCollector("events_today", events_today, "Events today"),
    BuiltinCollector("new_persons_today", new_persons_today, "New persons today"),
)


def register_builtin_collectors(registry: CollectorRegistry) -> list[StatCollector]:
    """Register every built-in collector as ``events.<name>`` with format ``integer``."""
    return [
        registry.register(PREFIX + item.name, item.collect, label=item.label, format="integer")
        for item in BUILTIN_COLLECTORS
    ]
