"""Query-string models shared by the report routes."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationInfo, field_validator

from ...errors import ValidationError
from ...queries.context import ReportContext, report_context
from ...queries.filters import PropertyFilter
from ...queries.relative_dates import GRAMMAR, check_token, resolve_range
from ...state import current_state
from ..models import ScopedModel
from ..params import DateTimeParam


def json_objects(value: Any, message: str) -> Any:
    """Query-string text (one or repeated) holding a JSON object or a list of them, as one
    list; anything else (already parsed) is left to the field's validation."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return value
    parsed: list[Any] = []
    for text in texts:
        try:
            item = json.loads(text)
        except ValueError as exc:
            raise ValueError(message) from exc
        parsed.extend(item if isinstance(item, list) else [item])
    return parsed


def json_filters(value: Any) -> Any:
    """Each ``filters=`` parameter is a JSON object or list of objects; repeats add up."""
    return json_objects(value, "must be a JSON list of {key, op, value} objects")


class ReportQuery(ScopedModel):
    """``date_from`` (inclusive) and ``date_to`` (exclusive), ISO 8601, a date alone meaning
    midnight in ``UMETRICS_TIMEZONE`` (default: the last 30 days including today);
    ``date_range``: instead of the two dates, a range relative to today (``-7d``,
    ``this_month``, ``last_month``, ``-12w``; see ``queries/relative_dates.py``);
    ``filters``: a JSON list of ``{"key", "op", "value"}`` on event properties;
    ``sample``: keep this fraction of persons and scale counts up; ``segment``: only the persons
    of this saved segment."""

    date_from: DateTimeParam | None = None
    date_to: DateTimeParam | None = None
    date_range: str | None = Field(
        None, max_length=32, description=f"Relative range instead of the dates: {GRAMMAR}."
    )
    filters: list[PropertyFilter] = Field(default_factory=list)
    sample: float | None = Field(None, gt=0, le=1)
    segment: str | None = Field(None, max_length=100, description="Key of a saved segment.")

    _filters = field_validator("filters", mode="before")(json_filters)

    @field_validator("date_range")
    @classmethod
    def _relative(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A known token, and not next to explicit dates (declared before it)."""
        if value is None:
            return value
        if info.data.get("date_from") or info.data.get("date_to"):
            raise ValueError("give either date_range or date_from/date_to")
        try:
            return check_token(value)
        except ValidationError as exc:
            raise ValueError(exc.message) from None

    def context(self, scope_id: str) -> ReportContext:
        date_from, date_to = self.date_from, self.date_to
        if self.date_range is not None:
            zone = ZoneInfo(current_state().settings.timezone)
            date_from, date_to = resolve_range(self.date_range, zone)
        return report_context(
            scope_id=scope_id,
            date_from=date_from,
            date_to=date_to,
            filters=self.filters,
            sample=self.sample,
            segment=self.segment,
        )
