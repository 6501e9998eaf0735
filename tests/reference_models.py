"""Straightforward pure-Python funnel and retention, written from the definitions in
docs/funnels-retention.md, to check the SQL.

Deliberately naive (brute force over chains and matchings); only for small event sets in tests.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from flask_umetrics.db.tables import person_distinct_ids
from flask_umetrics.state import current_state

from .events_data import stored_events as read_stored_events

MICROS = 1_000_000


@dataclass(frozen=True)
class Ev:
    id: int
    person: int
    event: str
    ts: int  # microseconds since the epoch, UTC
    active: bool = True
    properties: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def stored_events(scope_id: str = "default") -> list[Ev]:
    """Every stored event with its (current, merged) person: read back for the reference. The
    events from the store that holds them (on ClickHouse the ingestion ``seq`` is the id: it
    orders ties as ``events.id`` does in SQL); the person from the SQL map, the source of truth."""
    with current_state().engine.connect() as connection:
        person_of = dict(
            connection.execute(
                select(person_distinct_ids.c.distinct_id, person_distinct_ids.c.person_id).where(
                    person_distinct_ids.c.scope_id == scope_id
                )
            ).all()
        )
    return [
        Ev(e.id, person_of[e.distinct_id], e.event, e.ts, e.active, e.properties)
        for e in read_stored_events(scope_id)
        if e.distinct_id in person_of
    ]


# A step for the reference: an event name and a predicate on the properties.
Predicate = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class RefStep:
    event: str
    where: Predicate = lambda properties: True

    def matches(self, e: Ev) -> bool:
        return e.event == self.event and self.where(e.properties)


def _median(values: list[int]) -> float | None:
    return statistics.median(values) / MICROS if values else None


def _by_person(evs: Sequence[Ev]) -> dict[int, list[Ev]]:
    persons: dict[int, list[Ev]] = {}
    for e in sorted(evs, key=lambda e: (e.ts, e.id)):
        persons.setdefault(e.person, []).append(e)
    return persons


def _longest_chain(steps: Sequence[RefStep], evs: list[Ev], e1: Ev, window: int) -> int:
    """Exact: the longest chain e1..ek (non-decreasing ts, distinct events, within window)."""

    def extend(j: int, prev_ts: int, used: frozenset[int]) -> int:
        if j == len(steps):
            return j
        best = j
        for e in evs:
            if (
                e.id not in used
                and steps[j].matches(e)
                and e.ts >= prev_ts
                and e.ts - e1.ts <= window
            ):
                best = max(best, extend(j + 1, e.ts, used | {e.id}))
                if best == len(steps):
                    break
        return best

    return extend(1, e1.ts, frozenset({e1.id}))


def _greedy_chain(steps: Sequence[RefStep], evs: list[Ev], e1: Ev, window: int) -> list[Ev]:
    """Each next step: the earliest eligible event in (ts, id) order."""
    chain = [e1]
    for step in steps[1:]:
        used = {e.id for e in chain}
        nxt = next(
            (
                e
                for e in evs  # sorted by (ts, id)
                if e.id not in used
                and step.matches(e)
                and e.ts >= chain[-1].ts
                and e.ts - e1.ts <= window
            ),
            None,
        )
        if nxt is None:
            break
        chain.append(nxt)
    return chain


def _strict_chain(steps: Sequence[RefStep], evs: list[Ev], e1: Ev, window: int) -> list[Ev]:
    """Consecutive events of the person in (ts, id) order."""
    at = evs.index(e1)
    chain = [e1]
    for j, step in enumerate(steps[1:], 1):
        if at + j >= len(evs):
            break
        e = evs[at + j]
        if not step.matches(e) or e.ts - e1.ts > window:
            break
        chain.append(e)
    return chain


def _matching(steps: Sequence[RefStep], evs: Sequence[Ev]) -> int:
    """Maximum matching of steps to distinct events (Kuhn's augmenting paths)."""
    owner: dict[int, int] = {}

    def augment(s: int, seen: set[int]) -> bool:
        for e in evs:
            if steps[s].matches(e) and e.id not in seen:
                seen.add(e.id)
                if e.id not in owner or augment(owner[e.id], seen):
                    owner[e.id] = s
                    return True
        return False

    return sum(1 for s in range(len(steps)) if augment(s, set()))


def _any_times(steps: Sequence[RefStep], evs: list[Ev], e1: Ev, window: int) -> list[int]:
    """Moment at which 1, 2, ... steps are matched (step 1 = e1, others in any order)."""
    others = [e for e in evs if e.id != e1.id and e1.ts <= e.ts <= e1.ts + window]
    times = [e1.ts]
    for moment in sorted({e1.ts} | {e.ts for e in others}):
        matched = 1 + _matching(steps[1:], [e for e in others if e.ts <= moment])
        while len(times) < matched:
            times.append(moment)
    return times


@dataclass(frozen=True)
class RefExclusion:
    """An excluded event between 0-based steps ``from_step`` and ``to_step``."""

    step: RefStep
    from_step: int
    to_step: int


def _excluded(
    times: list[int], evs: list[Ev], exclusions: Sequence[RefExclusion], window: int
) -> bool:
    """An excluded event strictly after the chain's from-step and strictly before its to-step,
    or (to-step not reached) at most ``window`` after the entry."""
    for x in exclusions:
        if len(times) <= x.from_step:
            continue
        low = times[x.from_step]
        for e in evs:
            if not x.step.matches(e) or e.ts <= low:
                continue
            if e.ts < times[x.to_step] if len(times) > x.to_step else e.ts <= times[0] + window:
                return True
    return False


@dataclass(frozen=True)
class RefFunnel:
    counts: list[int]
    medians: list[float | None]
    breakdown: dict[Any, list[int]]  # entry property value -> counts (no top-N grouping)


def ref_funnel(
    evs: Sequence[Ev],
    steps: Sequence[RefStep],
    date_from: int,
    date_to: int,
    window: int,
    order: str = "ordered",
    breakdown: str | None = None,
    exclusions: Sequence[RefExclusion] = (),
    attribution: tuple[str, int] = ("entry", 0),
) -> RefFunnel:
    """Counts per step (persons with level >= j) and medians from the previous step."""
    reached: list[list[int]] = []  # per person: times of their chosen chain
    values: list[Any] = []
    for person_events in _by_person(evs).values():
        attempts = ref_attempts(person_events, steps, date_from, date_to, window, order, exclusions)
        best: tuple[list[int], list[Ev]] | None = None
        for times, chain in attempts:  # (ts, id) order: the earliest entry wins ties
            if best is None or len(times) > len(best[0]):
                best = (times, chain)
        if best is not None:
            reached.append(best[0])
            values.append(
                _attributed(
                    best[1],
                    person_events,
                    steps,
                    (date_from, date_to + window),
                    breakdown,
                    attribution,
                )
                if breakdown
                else None
            )
    n = len(steps)
    counts = [sum(1 for t in reached if len(t) > j) for j in range(n)]
    medians: list[float | None] = [None]
    for j in range(1, n):
        medians.append(_median([t[j] - t[j - 1] for t in reached if len(t) > j]))
    split: dict[Any, list[int]] = {}
    for times, value in zip(reached, values, strict=True):
        row = split.setdefault(value, [0] * n)
        for j in range(len(times)):
            row[j] += 1
    return RefFunnel(counts, medians, split)


def ref_attempts(
    person_events: list[Ev],
    steps: Sequence[RefStep],
    date_from: int,
    date_to: int,
    window: int,
    order: str,
    exclusions: Sequence[RefExclusion] = (),
) -> list[tuple[list[int], list[Ev]]]:
    """One person's attempts that survive the exclusions, in entry order: the times of the
    chain and its events (``any``: only the entry, its other steps are moments)."""
    attempts = []
    for e1 in person_events:
        if not (steps[0].matches(e1) and date_from <= e1.ts < date_to):
            continue
        if order == "strict":
            chain = _strict_chain(steps, person_events, e1, window)
            times = [e.ts for e in chain]
        elif order == "any":
            times, chain = _any_times(steps, person_events, e1, window), [e1]
        else:
            level = _longest_chain(steps, person_events, e1, window)
            chain = _greedy_chain(steps, person_events, e1, window)
            times = [e.ts for e in chain]
            assert len(times) == level, "greedy differs from the longest chain"
        if not _excluded(times, person_events, exclusions, window):
            attempts.append((times, chain))
    return attempts


def _attributed(
    chain: list[Ev],
    person_events: list[Ev],
    steps: Sequence[RefStep],
    span: tuple[int, int],
    key: str,
    attribution: tuple[str, int],
) -> Any:
    """The breakdown value of a person with chosen ``chain`` (see docs: breakdown attribution)."""
    kind, step = attribution
    if kind == "entry":
        return chain[0].properties.get(key)
    if kind == "step":
        return chain[step].properties.get(key) if len(chain) > step else None
    touched = [
        e.properties[key]
        for e in person_events  # (ts, id) order
        if span[0] <= e.ts <= span[1] and key in e.properties and any(s.matches(e) for s in steps)
    ]
    if not touched:
        return None
    return touched[-1] if kind == "last_touch" else touched[0]


def ref_funnel_trends(
    evs: Sequence[Ev],
    steps: Sequence[RefStep],
    bounds: Sequence[int],
    date_from: int,
    date_to: int,
    window: int,
    order: str = "ordered",
) -> list[tuple[int, int]]:
    """Per entry period ``[bounds[i], bounds[i+1])``: persons with an attempt entering in it,
    and those with such an attempt reaching the last step."""
    cells = [[0, 0] for _ in bounds[1:]]
    for person_events in _by_person(evs).values():
        levels: dict[int, int] = {}
        for times, _ in ref_attempts(person_events, steps, date_from, date_to, window, order):
            period = max(i for i, b in enumerate(bounds[:-1]) if b <= times[0])
            levels[period] = max(levels.get(period, 0), len(times))
        for period, level in levels.items():
            cells[period][0] += 1
            cells[period][1] += level == len(steps)
    return [(entered, converted) for entered, converted in cells]


def ref_time_to_convert(
    evs: Sequence[Ev],
    steps: Sequence[RefStep],
    date_from: int,
    date_to: int,
    window: int,
    order: str,
    from_step: int,
    to_step: int,
    bins: int,
) -> tuple[int, float | None, float | None, list[tuple[int, int, int]]]:
    """``converted, average, median, [(start, end, count)]`` in seconds (docs: time to convert)."""
    deltas = []
    for person_events in _by_person(evs).values():
        attempts = ref_attempts(person_events, steps, date_from, date_to, window, order)
        best = max((times for times, _ in attempts), key=len, default=None)  # first longest
        if best is not None and len(best) > to_step:
            deltas.append(best[to_step] - best[from_step])
    if not deltas:
        return 0, None, None, []
    start = min(deltas) // 1_000_000
    width = max(1, -(-(max(deltas) - start * 1_000_000) // (bins * 1_000_000)))
    counts = [0] * bins
    for d in deltas:
        counts[min(bins - 1, (d - start * 1_000_000) // (width * 1_000_000))] += 1
    histogram = [(start + i * width, start + (i + 1) * width, c) for i, c in enumerate(counts)]
    median = _median(deltas)
    assert median is not None
    return len(deltas), sum(deltas) / len(deltas) / 1_000_000, median, histogram


def _period_start(moment: datetime, period: str) -> date:
    day = moment.date()
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def _period_number(day: date, period: str) -> int:
    """A running number of the calendar period starting on ``day``."""
    if period == "month":
        return day.year * 12 + day.month
    if period == "week":  # Mondays are 7 apart, so this numbers weeks consecutively
        return day.toordinal() // 7
    return day.toordinal()


def ref_retention(
    evs: Sequence[Ev],
    zone: ZoneInfo,
    date_from: datetime,
    date_to: datetime,
    *,
    start_event: str | None = None,
    return_event: str | None = None,
    period: str = "week",
    periods: int = 8,
    mode: str = "first_time",
    bounded: bool = True,
) -> list[tuple[str, int, list[int]]]:
    """``[(cohort start ISO, size, counts k = 0..periods)]`` for the periods starting in range."""

    def local(e: Ev) -> datetime:
        return datetime.fromtimestamp(e.ts / MICROS, timezone.utc).astimezone(zone)

    def number(e: Ev) -> int:
        return _period_number(_period_start(local(e), period), period)

    def is_start(e: Ev) -> bool:
        return e.active if start_event is None else e.event == start_event

    def is_return(e: Ev) -> bool:
        return e.active if return_event is None else e.event == return_event

    shown: list[tuple[str, int]] = []
    day = _period_start(date_from.astimezone(zone), period)
    while True:
        start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
        if start >= date_to:
            break
        if start >= date_from:
            shown.append((start.isoformat(), _period_number(day, period)))
        day = (
            date(day.year + day.month // 12, day.month % 12 + 1, 1)
            if period == "month"
            else day + timedelta(days=7 if period == "week" else 1)
        )
    by_person = _by_person(evs)
    rows = []
    for label, p in shown:
        members = []
        for person_events in by_person.values():
            starts = [e for e in person_events if is_start(e)]
            if not starts:
                continue
            if mode == "first_time":
                inside = number(starts[0]) == p
            else:
                inside = any(number(e) == p for e in starts)
            if inside:
                members.append(person_events)
        counts = []
        for k in range(periods + 1):
            hit = 0
            for person_events in members:
                back = [number(e) for e in person_events if is_return(e)]
                if any(b == p + k if bounded else b >= p + k for b in back):
                    hit += 1
            counts.append(hit)
        rows.append((label, len(members), counts))
    return rows
