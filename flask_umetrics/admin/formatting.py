"""Jinja filters that turn report numbers into text the same way on every page."""

from __future__ import annotations

import math
from typing import Any

DASH = "\u2014"


def number(value: Any, digits: int = 2) -> str:
    """``1234`` -> ``1,234``; ``0.5`` -> ``0.50``; None or NaN -> an em dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def percent(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.125`` -> ``12.5%``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    return f"{float(value) * 100:.{digits}f}%"


def duration(value: Any) -> str:
    """Seconds as ``2d 03h``, ``1h 02m``, ``3m 05s`` or ``42s``."""
    if value is None:
        return DASH
    seconds = round(float(value))
    if seconds >= 2 * 86400:
        days, rest = divmod(seconds, 86400)
        return f"{days}d {rest // 3600:02d}h"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


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


FILTERS = {"um_number": number, "um_percent": percent, "um_duration": duration}
