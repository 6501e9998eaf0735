"""Straightforward pure-Python lifecycle and stickiness, written from the definitions in
docs/trends-lifecycle-stickiness.md, to check the SQL on small event sets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from hypothesis import strategies as st

from flask_umetrics import identify

from .events_data import clear_events, load
from .reference_models import MICROS, Ev


def _start(moment: datetime, period: str) -> date:
    day = moment.date()
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1) if period == "month" else day


def _number(day: date, period: str) -> int:
    """A running number of the period starting on ``day``: consecutive periods differ by 1."""
    if period == "month":
        return day.year * 12 + day.month
    return day.toordinal() // 7 if period == "week" else day.toordinal()


def _shown(
    zone: ZoneInfo, date_from: datetime, date_to: datetime, period: str
) -> list[tuple[str, int]]:
    """``(label, number)`` of the periods from the one holding ``date_from`` on."""
    shown = []
    day = _start(date_from.astimezone(zone), period)
    while (start := datetime.combine(day, datetime.min.time(), tzinfo=zone)) < date_to:
        shown.append((start.isoformat(), _number(day, period)))
        day = (
            date(day.year + day.month // 12, day.month % 12 + 1, 1)
            if period == "month"
            else day + timedelta(days=7 if period == "week" else 1)
        )
    return shown


def _numbering(zone: ZoneInfo, period: str):  # type: ignore[no-untyped-def]
    def number(e: Ev) -> int:
        local = datetime.fromtimestamp(e.ts / MICROS, timezone.utc).astimezone(zone)
        return _number(_start(local, period), period)

    return number


def ref_lifecycle(
    evs: Sequence[Ev],
    zone: ZoneInfo,
    date_from: datetime,
    date_to: datetime,
    *,
    event: str | None = None,
    period: str = "day",
) -> list[tuple[str, int, int, int, int]]:
    """``[(period start ISO, new, returning, resurrecting, dormant)]``."""
    shown = _shown(zone, date_from, date_to, period)
    number = _numbering(zone, period)
    low, high = shown[0][1] - 1, shown[-1][1]
    first: dict[int, int] = {}
    active: dict[int, set[int]] = {}
    for e in evs:
        n = number(e)
        first[e.person] = min(first.get(e.person, n), n)
        doing = e.active if event is None else e.event == event
        if doing and low <= n <= high:
            active.setdefault(e.person, set()).add(n)
    rows = []
    for label, p in shown:
        new = returning = resurrecting = dormant = 0
        for person, periods in active.items():
            if p in periods:
                if first[person] == p:
                    new += 1
                elif p - 1 in periods:
                    returning += 1
                else:
                    resurrecting += 1
            elif p - 1 in periods:
                dormant += 1
        rows.append((label, new, returning, resurrecting, dormant))
    return rows


def ref_stickiness(
    evs: Sequence[Ev],
    zone: ZoneInfo,
    date_from: datetime,
    date_to: datetime,
    *,
    event: str | None = None,
    period: str = "day",
) -> list[int]:
    """Persons who did the event in exactly ``1..N`` periods of the range (index 0: 1 period)."""
    shown = _shown(zone, date_from, date_to, period)
    number = _numbering(zone, period)
    start, stop = int(date_from.timestamp() * MICROS), int(date_to.timestamp() * MICROS)
    periods: dict[int, set[int]] = {}
    for e in evs:
        doing = e.active if event is None else e.event == event
        if doing and start <= e.ts < stop:
            periods.setdefault(e.person, set()).add(number(e))
    counts = [0] * len(shown)
    for found in periods.values():
        counts[len(found) - 1] += 1
    return counts


# --- what the lifecycle and stickiness hypothesis tests share -----------------------------

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 3, 23, tzinfo=BERLIN)  # a Monday; DST starts on Sunday Mar 29
GRID = timedelta(hours=7)  # crosses midnights at varying local hours

#: ``(person, event name, 7-hour slot, active)`` rows, and ``(user, anon)`` identify links.
ROWS = st.lists(
    st.tuples(st.integers(0, 4), st.sampled_from(["a", "b"]), st.integers(0, 60), st.booleans()),
    min_size=1,
    max_size=24,
)
LINKS = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=3)


def load_drawn(app: Flask, rows: list[Any], links: list[tuple[int, int]]) -> None:
    """Replace the stored events by the drawn ones, then merge the drawn identities."""
    clear_events(app)
    load(app, [(f"d{d}", name, (START + n * GRID).isoformat(), None, a) for d, name, n, a in rows])
    with app.app_context():
        for user, anon in links:
            identify(f"d{user}", anon_id=f"d{anon}")


def draw_report(data: st.DataObject) -> tuple[str, datetime, datetime, str | None]:
    """A period, a range of local days (starting at midnight or at 10:00) and an event."""
    period = data.draw(st.sampled_from(["day", "week"]))
    first_day = data.draw(st.integers(0, 12))
    date_from = START + timedelta(days=first_day, hours=data.draw(st.sampled_from([0, 10])))
    date_to = START + timedelta(days=first_day + data.draw(st.integers(1, 9)))
    return period, date_from, date_to, data.draw(st.sampled_from([None, "a"]))
