"""Field types shared by request models: scope ids, metric keys, and dates in the app's zone."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, StringConstraints

from ..config import SCOPE_ID_PATTERN
from ..state import current_state
from ..validation import METRIC_KEY_PATTERN

ScopeId = Annotated[str, StringConstraints(pattern=SCOPE_ID_PATTERN.pattern)]
MetricKey = Annotated[str, StringConstraints(pattern=METRIC_KEY_PATTERN.pattern)]


def parse_iso_datetime(value: Any) -> Any:
    """ISO 8601 text to an aware datetime; a date alone, or no offset, means UMETRICS_TIMEZONE."""
    if not isinstance(value, str):
        return value
    zone = ZoneInfo(current_state().settings.timezone)
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=zone)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("must be an ISO 8601 date or date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


#: A date-time query or body field (``2026-01-31``, ``2026-01-31T12:00:00Z``).
DateTimeParam = Annotated[datetime, BeforeValidator(parse_iso_datetime)]
