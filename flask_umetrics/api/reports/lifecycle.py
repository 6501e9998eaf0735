"""Report route: lifecycle (``/api/query/lifecycle``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...queries.lifecycle import LifecycleResult, lifecycle
from ..router import APICall
from ..routes import router
from .params import ReportQuery

TAG = "reports"


class LifecycleQuery(ReportQuery):
    event: str | None = Field(
        None, min_length=1, max_length=200, description="Default: any active event."
    )
    interval: Literal["hour", "day", "week", "month"] = "day"
    compare: Literal["previous"] | None = Field(
        None, description="previous: add the same report over the previous range as `previous`."
    )


@router.route(
    "/query/lifecycle",
    summary="New, returning, resurrecting and dormant persons per period",
    permission="metrics.view",
    tag=TAG,
    query=LifecycleQuery,
    response=LifecycleResult,
)
def query_lifecycle(call: APICall) -> LifecycleResult:
    q = call.query
    return lifecycle(
        q.context(call.scope_id), event=q.event, interval=q.interval, compare=q.compare
    )
