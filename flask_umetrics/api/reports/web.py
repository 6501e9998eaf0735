"""Report route: the web overview (``/api/query/web``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...queries.web import MAX_LIMIT, WebResult, web_overview
from ..router import APICall
from ..routes import router
from .attribution import OwnHostsQuery

TAG = "reports"


class WebQuery(OwnHostsQuery):
    interval: Literal["hour", "day", "week", "month"] = "day"
    limit: int = Field(10, ge=1, le=MAX_LIMIT, description="Rows of each breakdown.")


@router.route(
    "/query/web",
    summary="Web analytics: visitors, page views, sessions, pages, sources, browsers",
    permission="metrics.view",
    tag=TAG,
    query=WebQuery,
    response=WebResult,
)
def query_web(call: APICall) -> WebResult:
    q = call.query
    return web_overview(
        q.context(call.scope_id), interval=q.interval, limit=q.limit, own_hosts=tuple(q.own_hosts)
    )
