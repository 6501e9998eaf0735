"""The date-range presets of every report form's Range select (last 7/30/90 days, this month, ...).

Each preset is a ``date_from`` / ``date_to`` pair (``date_to`` exclusive) of calendar days in
``UMETRICS_TIMEZONE``, the zone the report routes read a bare date in, so "last 7 days" means
today and the six days before it where the app's users live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import request

from ..queries.relative_dates import local_today, relative_range
from .formatting import time_zone


@dataclass(frozen=True)
class DatePreset:
    label: str
    date_from: date
    date_to: date
    #: The relative range it is (``-7d``), which a saved insight or dashboard keeps.
    token: str = ""

    @property
    def active(self) -> bool:
        """This preset is the page's range: its token is the query string's ``date_range``
        (or, from links made before presets were tokens, its two dates are)."""
        chosen = request.args.get("date_range")
        if chosen:
            return chosen == self.token
        return request.args.get("date_from") == self.date_from.isoformat() and (
            request.args.get("date_to") == self.date_to.isoformat()
        )


#: (label, relative range token) of each preset, in the order shown.
PRESETS: tuple[tuple[str, str], ...] = (
    ("Today", "today"),
    ("Yesterday", "yesterday"),
    ("Last 7 days", "-7d"),
    ("Last 30 days", "-30d"),
    ("Last 90 days", "-90d"),
    ("This month", "this_month"),
    ("Last month", "last_month"),
    ("Last 12 months", "-12m"),
)


def date_presets(today: date | None = None) -> list[DatePreset]:
    """The presets as of ``today`` (default: today in the app's time zone), each read by the
    one relative-range parser saved insights use (``queries/relative_dates.py``)."""
    today = today or local_today(time_zone())
    return [DatePreset(label, *relative_range(token, today), token) for label, token in PRESETS]
