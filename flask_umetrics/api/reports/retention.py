"""Report route: retention (``/api/query/retention``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ...queries.filters import PropertyFilter
from ...queries.retention import MAX_BREAKDOWN_LIMIT, RetentionResult, retention
from ..router import APICall
from ..routes import router
from .params import ReportQuery, json_filters

TAG = "reports"


class RetentionQuery(ReportQuery):
    start_event: str | None = Field(
        None, min_length=1, max_length=200, description="Default: any active event."
    )
    return_event: str | None = Field(
        None, min_length=1, max_length=200, description="Default: any active event."
    )
    period: Literal["hour", "day", "week", "month"] = "week"
    periods: int = Field(8, ge=1, le=52, description="Columns k = 0..periods.")
    mode: Literal["first_time", "recurring"] = "first_time"
    bounded: bool = Field(True, description="false: returning in P+k or any later period.")
    start_filters: list[PropertyFilter] = Field(
        default_factory=list, description="JSON list like filters, on start events only."
    )
    return_filters: list[PropertyFilter] = Field(
        default_factory=list, description="JSON list like filters, on return events only."
    )
    week_start: Literal["monday", "sunday"] = "monday"
    windows: Literal["calendar", "rolling"] = Field(
        "calendar",
        description="rolling: column k is the k-th 1 h / 24 h / 7 x 24 h window from the "
        "person's first start event in the cohort period (period hour, day or week).",
    )
    breakdown: str | None = Field(
        None, min_length=1, max_length=200, description="A property key: one grid per value."
    )
    breakdown_type: Literal["event", "person"] = Field(
        "event", description="event: the value on the start event; person: the person's."
    )
    breakdown_limit: int = Field(10, ge=1, le=MAX_BREAKDOWN_LIMIT)

    _start_filters = field_validator("start_filters", mode="before")(json_filters)
    _return_filters = field_validator("return_filters", mode="before")(json_filters)

    def options(self) -> dict[str, object]:
        """The keyword arguments of ``retention`` / ``retention_persons``."""
        return {
            "start_event": self.start_event,
            "return_event": self.return_event,
            "periods": self.periods,
            "mode": self.mode,
            "bounded": self.bounded,
            "start_filters": self.start_filters,
            "return_filters": self.return_filters,
            "week_start": self.week_start,
            "windows": self.windows,
            "breakdown": self.breakdown,
            "breakdown_type": self.breakdown_type,
            "breakdown_limit": self.breakdown_limit,
        }


@router.route(
    "/query/retention",
    summary="Retention cohorts by calendar period",
    permission="metrics.view",
    tag=TAG,
    query=RetentionQuery,
    response=RetentionResult,
)
def query_retention(call: APICall) -> RetentionResult:
    q = call.query
    return retention(q.context(call.scope_id), period=q.period, **q.options())
