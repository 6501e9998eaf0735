"""Jinja filters that turn report numbers, times and column names into text for people, the
same way on every page.

Tables keep their machine column names (``conversion_from_start``): CSV downloads use them, so a
script reading a download sees the REST API's field names. Only what is shown on a page goes
through :func:`column_label`. Times are shown in ``UMETRICS_TIMEZONE`` to the minute (or second),
with the exact UTC instant in the element's title.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from ..queries.attribution import CHANNEL_LABELS

DASH = "\u2014"

#: Human labels for the machine column names of the dashboard's tables (CSV keeps the machine
#: names). A column not listed (an event name, a breakdown value) is data and shown as is.
LABELS: dict[str, str] = {
    "abs_lift": "Lift (absolute)",
    "actions": "Actions",
    "chance_to_win": "Chance to win",
    "ci_high": "CI high",
    "ci_low": "CI low",
    "cohort": "Cohort",
    "configured": "Configured",
    "conversion_from_previous": "Conversion from previous step",
    "conversion_from_start": "Conversion from start",
    "conversions": "Conversions",
    "count": "Count",
    "created": "Created",
    "created_by": "Created by",
    "credited_value": "Credited value",
    "distinct_id": "Distinct id",
    "distinct_ids": "Distinct ids",
    "drop_off": "Dropped off",
    "drop_off_share": "Drop-off rate",
    "duration": "Duration",
    "effective_status": "Status now",
    "end": "End",
    "event": "Event",
    "events": "Events",
    "exposures": "Exposures",
    "first_seen": "First seen",
    "from": "From",
    "key": "Key",
    "key_id": "Key id",
    "kind": "Kind",
    "last_seen": "Last seen",
    "last_used": "Last used",
    "mean": "Mean",
    "meaning": "Meaning",
    "metric": "Metric",
    "name": "Name",
    "p_value": "p-value",
    "period": "Period",
    "permission": "Permission",
    "persons": "Persons",
    "properties": "Properties",
    "property": "Property",
    "rel_ci_high": "Rel. CI high",
    "rel_ci_low": "Rel. CI low",
    "rel_lift": "Lift (relative)",
    "rel_p_value": "Rel. p-value",
    "retained": "Retained",
    "secret": "Secret",
    "seq_ci_high": "Sequential CI high",
    "seq_ci_low": "Sequential CI low",
    "seq_p_value": "Sequential p-value",
    "series": "Series",
    "session_id": "Session id",
    "start": "Start",
    "status": "Status",
    "step": "Step",
    "time": "Time",
    "to": "To",
    "total": "Total",
    "transition": "Transition",
    "value": "Value",
    "variant": "Variant",
    "variants": "Variants (weights)",
    "where": "Where",
    "median_seconds_from_previous": "Median time from previous step",
    "dau": "Daily active users",
    "wau": "Weekly active users",
    "mau": "Monthly active users",
    "total_events": "Events",
    "new_persons": "New persons",
    "sessions": "Sessions",
    "visitors": "Visitors",
    "pageviews": "Page views",
    "channel": "Channel",
    "source": "Source",
    "campaign": "Campaign",
    # Attribution channels (the library's own names, not data)
    **CHANNEL_LABELS,
    # Lifecycle statuses and stickiness
    "new": "New",
    "returning": "Returning",
    "resurrecting": "Resurrecting",
    "dormant": "Dormant",
    "active": "Active",
    "periods": "Periods",
}


#: An ISO 8601 timestamp as the REST API writes it (``2026-11-19T06:15:25.802143+00:00``).
_ISO_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?")


def column_label(name: Any) -> str:
    """``conversion_from_start`` -> ``Conversion from start``; unknown names (data) unchanged."""
    return LABELS.get(str(name), str(name))


def time_zone() -> ZoneInfo:
    """The app's ``UMETRICS_TIMEZONE`` (UTC outside a request)."""
    from ..state import current_state

    try:
        return ZoneInfo(current_state().settings.timezone)
    except RuntimeError:  # pragma: no cover - no app context
        return ZoneInfo("UTC")


def parse_time(value: Any) -> datetime | None:
    """A datetime or an ISO 8601 text as an aware datetime (naive values are UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and _ISO_TIMESTAMP.fullmatch(value.strip()):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def local_time(value: Any, seconds: bool = False) -> Markup | str:
    """A moment in the app's time zone without microseconds, in a ``<time>`` element whose
    title holds the exact instant: ``2026-11-19 07:15`` (title ``2026-11-19 06:15:25.802143
    UTC``). Text that is no timestamp is returned unchanged (escaped)."""
    if value is None or value == "":
        return DASH
    moment = parse_time(value)
    if moment is None:
        return str(value)
    local = moment.astimezone(time_zone())
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    exact = moment.astimezone(timezone.utc).isoformat(sep=" ").replace("+00:00", " UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat(), exact, shown
    )


def local_date(value: Any) -> Markup | str:
    """The calendar day of a moment in the app's time zone (title: the exact instant)."""
    moment = parse_time(value)
    if moment is None:
        return DASH if value in (None, "") else str(value)
    local = moment.astimezone(time_zone())
    exact = moment.astimezone(timezone.utc).isoformat(sep=" ").replace("+00:00", " UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat(), exact, local.strftime("%Y-%m-%d")
    )


def properties(value: Any) -> Markup:
    """A properties object as a key/value list (``plan = pro``), keys in order."""
    if not isinstance(value, dict) or not value:
        return Markup('<span class="um-muted">none</span>') if not value else Markup(escape(value))
    items = []
    for key in sorted(value):
        item = value[key]
        text = item if isinstance(item, str) else _json_text(item)
        items.append(Markup("<div><dt>{}</dt><dd>{}</dd></div>").format(key, text))
    return Markup('<dl class="um-props">{}</dl>').format(Markup("").join(items))


def doc_text(value: Any) -> Markup:
    """A setting's documentation: text between backticks shown as code, the rest escaped."""
    parts = str(value).split("`")
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if index % 2 else escape(part)
        for index, part in enumerate(parts)
    )


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def cell(value: Any, fmt: str | None = None) -> Markup | str:
    """One table cell's text in its column's format (``percent``, ``duration``, ``time``,
    ``properties``, ``precise``); numbers get separators, ISO timestamps the local time."""
    if fmt == "percent":
        return percent(value)
    if fmt == "duration":
        return duration(value)
    if fmt == "precise":
        return number(value, 4)
    if fmt == "properties":
        return properties(value)
    if fmt == "seconds":
        return local_time(value, seconds=True)
    if fmt == "label":
        return column_label(value)
    if fmt == "doc":
        return doc_text(value)
    if isinstance(value, (int, float)) or value is None:
        return number(value)
    if isinstance(value, dict):
        return properties(value)
    if isinstance(value, str) and parse_time(value) is not None:
        return local_time(value, seconds=fmt == "time")
    return str(value)


def number(value: Any, digits: int = 2) -> str:
    """``1234`` -> ``1,234``; ``0.5`` -> ``0.50``; ``0.00001`` -> ``< 0.01``; None or NaN ->
    an em dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10**-digits / 2:  # 0.00001 is not 0.0000
            step = f"{10**-digits:.{digits}f}"
            return f"> -{step}" if value < 0 else f"< {step}"
        return f"{value:,.{digits}f}"
    return str(value)


def percent(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.125`` -> ``12.5%``, ``1.0`` -> ``100%``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    text = f"{float(value) * 100:,.{digits}f}"
    if "." in text:  # 100.0% -> 100%, 12.50% -> 12.5%
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def duration(value: Any) -> str:
    """Seconds as ``2 d 3 h``, ``1 h 2 min``, ``3 min 20 s`` or ``42 s`` (to the hour past a
    day, to the minute past an hour)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    seconds = round(float(value))
    if seconds >= 86400:
        days, rest = divmod(seconds, 86400)
        return _two_units(days, "d", rest // 3600, "h")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _two_units(hours, "h", minutes, "min")
    if minutes:
        return _two_units(minutes, "min", secs, "s")
    return f"{secs} s"


def _two_units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    """``1 d 9 h``; ``2 h`` rather than ``2 h 0 min``."""
    text = f"{big:,} {big_unit}"
    return f"{text} {small} {small_unit}" if small else text


def stat_value(value: Any, fmt: str) -> str:
    """A stat reading in its collector's format (``integer``, ``currency:USD``, ...)."""
    if value is None:
        return DASH
    if fmt == "integer":
        return number(round(float(value)))
    if fmt == "percent":
        return percent(value)
    if fmt == "duration":
        return duration(value)
    if fmt.startswith("currency"):
        code = fmt.partition(":")[2] or ""
        symbol = {"USD": "$", "EUR": "\u20ac", "GBP": "\u00a3"}.get(code, "")
        text = f"{float(value):,.2f}"
        return f"{symbol}{text}" if symbol else f"{text} {code}".strip()
    return number(value)


FILTERS = {
    "um_number": number,
    "um_percent": percent,
    "um_duration": duration,
    "um_time": local_time,
    "um_date": local_date,
    "um_label": column_label,
    "um_cell": cell,
    "um_properties": properties,
}
