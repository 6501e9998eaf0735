"""Report route: sessions (``/api/query/sessions``)."""

from __future__ import annotations

from pydantic import Field

from ...queries.sessions import SessionSummary, session_summary
from ..router import APICall
from ..routes import router
from .params import ReportQuery

TAG = "reports"


class SessionsQuery(ReportQuery):
    pageview_event: str = Field(
        "$pageview", min_length=1, max_length=200, description="The event counted as a page view."
    )


@router.route(
    "/query/sessions",
    summary="Sessions starting in range: count, median/mean duration, bounce rate",
    permission="metrics.view",
    tag=TAG,
    query=SessionsQuery,
    response=SessionSummary,
)
def query_sessions(call: APICall) -> SessionSummary:
    q = call.query
    return session_summary(q.context(call.scope_id), pageview_event=q.pageview_event)
