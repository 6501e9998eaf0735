"""Report route: the live feed (``/api/query/live``)."""

from __future__ import annotations

from pydantic import Field

from ...queries.live import MAX_LIMIT, MAX_MINUTES, LiveFeed, live
from ..models import ScopedModel
from ..router import APICall
from ..routes import router

TAG = "reports"


class LiveQuery(ScopedModel):
    minutes: int = Field(30, ge=1, le=MAX_MINUTES)
    limit: int = Field(100, ge=1, le=MAX_LIMIT)


@router.route(
    "/query/live",
    summary="Events of the last minutes, newest first, with a per-minute count",
    permission="metrics.view",
    tag=TAG,
    query=LiveQuery,
    response=LiveFeed,
)
def query_live(call: APICall) -> LiveFeed:
    q = call.query
    return live(call.scope_id, minutes=q.minutes, limit=q.limit)
