"""Calendar buckets in ``UMETRICS_TIMEZONE`` (hour, day, Monday weeks, month), DST-correct.

The bucket starts are computed in Python (a handful per report) and the database maps each
timestamp to its bucket index with a balanced ``CASE`` over those starts: ``log2(n)``
comparisons per row, identical SQL semantics on SQLite and PostgreSQL, and no dependence on
either database's time-zone tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from itertools import pairwise
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import case, literal
from sqlalchemy.sql import ColumnElement

from ..errors import ValidationError
from ..events.validation import to_micros

Interval = Literal["hour", "day", "week", "month"]
INTERVALS: tuple[str, ...] = ("hour", "day", "week", "month")


def floor_to(moment: datetime, interval: str, zone: ZoneInfo, week_start: int = 0) -> datetime:
    """The start of the bucket containing ``moment``, as an aware datetime in ``zone``; weeks
    start on the weekday ``week_start`` (0 Monday .. 6 Sunday)."""
    local = moment.astimezone(zone)
    if interval == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.date()
    if interval == "week":
        day -= timedelta(days=(day.weekday() - week_start) % 7)
    elif interval == "month":
        day = day.replace(day=1)
    return datetime.combine(day, time(0), tzinfo=zone)


def next_start(start: datetime, interval: str, zone: ZoneInfo) -> datetime:
    """The start of the bucket after the one starting at ``start``."""
    if interval == "hour":
        # Hours are uniform in UTC; converting back keeps the local label right across DST.
        return (start.astimezone(timezone.utc) + timedelta(hours=1)).astimezone(zone)
    day: date = start.date()
    if interval == "day":
        day += timedelta(days=1)
    elif interval == "week":
        day += timedelta(days=7)
    else:
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return datetime.combine(day, time(0), tzinfo=zone)


@dataclass(frozen=True)
class Buckets:
    """Consecutive buckets from the one containing ``date_from`` through the one before
    ``date_to`` (plus ``extra`` more), with their starts in µs for SQL."""

    interval: str
    zone: ZoneInfo
    starts: tuple[datetime, ...]
    end: datetime

    @classmethod
    def covering(
        cls,
        date_from: datetime,
        date_to: datetime,
        interval: str,
        zone: ZoneInfo,
        extra: int = 0,
        *,
        limit: int | None = None,
        field: str = "interval",
        week_start: int = 0,
    ) -> Buckets:
        """With ``limit``, more than ``limit`` buckets (``extra`` included) raise a
        ``ValidationError`` naming ``field``, before they are all built."""
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
        start = floor_to(date_from, interval, zone, week_start)
        starts: list[datetime] = []
        most = None if limit is None else limit - extra
        while start < date_to:
            if most is not None and len(starts) >= most:
                raise ValidationError(
                    field,
                    f"the range holds more than {limit} {interval} buckets "
                    "(UMETRICS_MAX_REPORT_BUCKETS); use a coarser one or a shorter range",
                )
            starts.append(start)
            start = next_start(start, interval, zone)
        for _ in range(extra):
            starts.append(start)
            start = next_start(start, interval, zone)
        return cls(interval, zone, tuple(starts), start)

    @property
    def start_us(self) -> int:
        return to_micros(self.starts[0]) if self.starts else to_micros(self.end)

    @property
    def end_us(self) -> int:
        return to_micros(self.end)

    def labels(self) -> list[str]:
        """ISO start of each bucket, in the report's time zone."""
        return [start.isoformat() for start in self.starts]

    def index(self, ts: ColumnElement[Any]) -> ColumnElement[int]:
        """SQL for the bucket index of ``ts`` (µs): -1 before the first, ``len`` after the last.

        Equal-width buckets (no DST change or month in the range) are one integer division;
        otherwise a balanced CASE over the bucket starts.
        """
        bounds = [to_micros(start) for start in self.starts] + [self.end_us]
        widths = {b - a for a, b in pairwise(bounds)}
        if len(widths) == 1:
            width = widths.pop()
            return case(
                (ts < bounds[0], literal(-1)),
                (ts >= bounds[-1], literal(len(bounds) - 1)),
                else_=(ts - bounds[0]) // width,
            )
        return _search(ts, bounds, 0, len(bounds) - 1)


def _search(ts: ColumnElement[Any], bounds: list[int], low: int, high: int) -> ColumnElement[int]:
    """Index ``i`` with ``bounds[i] <= ts < bounds[i+1]`` for ``bounds[low] <= ts < bounds[high]``
    (``low - 1`` below, ``high`` above), as a balanced CASE."""
    if high - low <= 1:
        whens = [(ts < bounds[0], literal(-1))] if low == 0 else []
        whens.append((ts < bounds[high], literal(low)))
        return case(*whens, else_=literal(high))
    middle = (low + high) // 2
    return case(
        (ts < bounds[middle], _search(ts, bounds, low, middle)),
        else_=_search(ts, bounds, middle, high),
    )


def shift_back(moment: datetime, interval: str, zone: ZoneInfo, count: int) -> datetime:
    """``moment`` moved ``count`` intervals earlier by the calendar of ``zone``: hours in UTC,
    days and weeks keep the local wall time across a DST change, months keep the day of the
    month (clamped to the month's last day)."""
    if interval == "hour":
        return (moment.astimezone(timezone.utc) - timedelta(hours=count)).astimezone(zone)
    local = moment.astimezone(zone).replace(tzinfo=None)
    if interval in {"day", "week"}:
        local -= timedelta(days=count * (7 if interval == "week" else 1))
    else:
        months = local.year * 12 + local.month - 1 - count
        year, month = divmod(months, 12)
        last = (date(year + month // 11, (month + 1) % 12 + 1, 1) - timedelta(days=1)).day
        local = local.replace(year=year, month=month + 1, day=min(local.day, last))
    return local.replace(tzinfo=zone)
