"""Report route: stickiness (``/api/query/stickiness``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...queries.stickiness import StickinessResult, stickiness
from ..router import APICall
from ..routes import router
from .params import ReportQuery

TAG = "reports"


class StickinessQuery(ReportQuery):
    event: str | None = Field(
        None, min_length=1, max_length=200, description="Default: any active event."
    )
    interval: Literal["hour", "day", "week", "month"] = "day"
    compare: Literal["previous"] | None = Field(
        None, description="previous: add the same report over the previous range as `previous`."
    )


@router.route(
    "/query/stickiness",
    summary="Persons by the number of periods of the range they did the event in",
    permission="metrics.view",
    tag=TAG,
    query=StickinessQuery,
    response=StickinessResult,
)
def query_stickiness(call: APICall) -> StickinessResult:
    q = call.query
    return stickiness(
        q.context(call.scope_id), event=q.event, interval=q.interval, compare=q.compare
    )
