"""Query-string models shared by the report routes."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, field_validator

from ...queries.context import ReportContext, report_context
from ...queries.filters import PropertyFilter
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


class ReportQuery(ScopedModel):
    """``date_from`` (inclusive) and ``date_to`` (exclusive), ISO 8601, a date alone meaning
    midnight in ``UMETRICS_TIMEZONE`` (default: the last 30 days including today);
    ``filters``: a JSON list of ``{"key", "op", "value"}`` on event properties;
    ``sample``: keep this fraction of persons and scale counts up; ``segment``: only the persons
    of this saved segment."""

    date_from: DateTimeParam | None = None
    date_to: DateTimeParam | None = None
    filters: list[PropertyFilter] = Field(default_factory=list)
    sample: float | None = Field(None, gt=0, le=1)
    segment: str | None = Field(None, max_length=100, description="Key of a saved segment.")

    @field_validator("filters", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        """Each ``filters=`` parameter is a JSON object or list of objects; repeats add up."""
        return json_objects(value, "must be a JSON list of {key, op, value} objects")

    def context(self, scope_id: str) -> ReportContext:
        return report_context(
            scope_id=scope_id,
            date_from=self.date_from,
            date_to=self.date_to,
            filters=self.filters,
            sample=self.sample,
            segment=self.segment,
        )
