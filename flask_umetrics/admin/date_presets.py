"""The date-range presets above every report form (last 7/30/90 days, this month, ...).

Each preset is a ``date_from`` / ``date_to`` pair (``date_to`` exclusive) of calendar days in
``UMETRICS_TIMEZONE``, the zone the report routes read a bare date in, so "last 7 days" means
today and the six days before it where the app's users live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from flask import request

from .formatting import time_zone


@dataclass(frozen=True)
class DatePreset:
    label: str
    date_from: date
    date_to: date

    @property
    def active(self) -> bool:
        """This preset is the page's range (its two dates are in the query string)."""
        return request.args.get("date_from") == self.date_from.isoformat() and (
            request.args.get("date_to") == self.date_to.isoformat()
        )


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def date_presets(today: date | None = None) -> list[DatePreset]:
    """The presets as of ``today`` (default: today in the app's time zone)."""
    today = today or datetime.now(time_zone()).date()
    tomorrow = today + timedelta(days=1)
    return [
        DatePreset("Today", today, tomorrow),
        DatePreset("Last 7 days", today - timedelta(days=6), tomorrow),
        DatePreset("Last 30 days", today - timedelta(days=29), tomorrow),
        DatePreset("Last 90 days", today - timedelta(days=89), tomorrow),
        DatePreset("This month", _month_start(today), tomorrow),
        DatePreset("Last month", _month_start(today, 1), _month_start(today)),
        DatePreset("Last 12 months", _month_start(today, 11), tomorrow),
    ]


def preset_url(preset: DatePreset) -> str:
    """This page with the preset's range, its other parameters kept (paging reset)."""
    args = request.args.to_dict(flat=False)
    for name in ("date_from", "date_to", "offset", "before", "format", "table"):
        args.pop(name, None)
    args["date_from"] = [preset.date_from.isoformat()]
    args["date_to"] = [preset.date_to.isoformat()]
    return request.path + "?" + urlencode(args, doseq=True)
