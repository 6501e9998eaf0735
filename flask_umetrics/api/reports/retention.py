"""Report route: retention (``/api/query/retention``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...queries.retention import RetentionResult, retention
from ..router import APICall
from ..routes import router
from .params import ReportQuery

TAG = "reports"


class RetentionQuery(ReportQuery):
    start_event: str | None = Field(
        None, min_length=1, max_length=200, description="Default: any active event."
    )
    return_event: str | None = Field(
        None, min_length=1, max_length=200, description="Default: any active event."
    )
    period: Literal["day", "week", "month"] = "week"
    periods: int = Field(8, ge=1, le=52, description="Columns k = 0..periods.")
    mode: Literal["first_time", "recurring"] = "first_time"
    bounded: bool = Field(True, description="false: returning in P+k or any later period.")


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
    return retention(
        q.context(call.scope_id),
        start_event=q.start_event,
        return_event=q.return_event,
        period=q.period,
        periods=q.periods,
        mode=q.mode,
        bounded=q.bounded,
    )
