"""Report route: stickiness (``/api/query/stickiness``)."""

from __future__ import annotations

from ...queries.stickiness import StickinessResult, stickiness
from ..router import APICall
from ..routes import router
from .lifecycle import LifecycleQuery

TAG = "reports"


class StickinessQuery(LifecycleQuery):
    """The same inputs as lifecycle: one event, an interval, ``compare``."""


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
