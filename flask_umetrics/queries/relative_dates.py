"""Relative date ranges (``-7d``, ``this_month``, ...) that move with today.

A saved insight or dashboard keeps the token, not the dates, so "the last 7 days" opened next
week shows next week's last 7 days. Every range is whole calendar days in ``UMETRICS_TIMEZONE``
with an exclusive end, read the same way as the dashboard's presets (``admin/date_presets.py``
builds its links with :func:`relative_range`), so ``-7d`` is today and the six days before it:

=============  ==========================================================
``today``      today
``yesterday``  the day before today
``-Nd``        the ``N`` days ending today (``-1d`` = today)
``-Nw``        the ``7 * N`` days ending today
``-Nm``        this calendar month and the ``N - 1`` before it
``-Ny``        this calendar year and the ``N - 1`` before it
``this_week``  Monday of this week through today
``last_week``  Monday to Sunday of the week before this one
``this_month`` the first of this month through today
``last_month`` the whole month before this one
``this_year``  the first of January through today
=============  ==========================================================
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from ..errors import ValidationError

_COUNTED = re.compile(r"^-(\d{1,4})([dwmy])$")
NAMED = ("today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year")
#: What the token grammar is, for error messages and the OpenAPI description.
GRAMMAR = "-Nd, -Nw, -Nm, -Ny (N = 1..9999), " + ", ".join(NAMED)


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def relative_range(token: str, today: date, field: str = "date_range") -> tuple[date, date]:
    """The first day and the exclusive end day of ``token`` as of ``today``; an unknown token
    raises a ``ValidationError`` naming ``field``."""
    if not isinstance(token, str):
        raise ValidationError(field, f"must be one of {GRAMMAR}")
    tomorrow = today + timedelta(days=1)
    counted = _COUNTED.match(token.strip())
    if counted and int(counted.group(1)) < 1:
        raise ValidationError(field, "the count must be at least 1")
    try:
        if counted:
            n, unit = int(counted.group(1)), counted.group(2)
            if unit == "d":
                return today - timedelta(days=n - 1), tomorrow
            if unit == "w":
                return today - timedelta(days=7 * n - 1), tomorrow
            if unit == "m":
                return _month_start(today, n - 1), tomorrow
            return date(today.year - n + 1, 1, 1), tomorrow
        monday = today - timedelta(days=today.weekday())
        named = {
            "today": (today, tomorrow),
            "yesterday": (today - timedelta(days=1), today),
            "this_week": (monday, tomorrow),
            "last_week": (monday - timedelta(days=7), monday),
            "this_month": (_month_start(today), tomorrow),
            "last_month": (_month_start(today, 1), _month_start(today)),
            "this_year": (date(today.year, 1, 1), tomorrow),
        }
    except (OverflowError, ValueError) as exc:
        raise ValidationError(field, "reaches before year 1") from exc
    if token in named:
        return named[token]
    raise ValidationError(field, f"must be one of {GRAMMAR}")


def check_token(token: str, field: str = "date_range") -> str:
    """``token`` if it is a relative range (checked against a fixed day), else a
    ``ValidationError`` naming ``field``."""
    relative_range(token, date(2000, 1, 1), field)
    return token


def clock() -> datetime:
    """Now, in UTC: the one clock relative ranges read (tests replace it)."""
    return datetime.now(timezone.utc)


def local_today(zone: ZoneInfo) -> date:
    """Today in ``zone`` (where the app's users live, not where the server is)."""
    return clock().astimezone(zone).date()


def resolve_range(
    token: str, zone: ZoneInfo, field: str = "date_range"
) -> tuple[datetime, datetime]:
    """``token`` as an aware half-open range: local midnight to local midnight in ``zone``."""
    first, end = relative_range(token, local_today(zone), field)
    return (
        datetime.combine(first, time(0), tzinfo=zone),
        datetime.combine(end, time(0), tzinfo=zone),
    )
