"""Report route: the dashboard summary (``/api/query/dashboard``)."""

from __future__ import annotations

from ...queries.dashboard import DashboardSummary, dashboard_summary
from ..router import APICall
from ..routes import router
from .params import ReportQuery

TAG = "reports"


@router.route(
    "/query/dashboard",
    summary="Headline numbers: events, DAU/WAU/MAU, new persons, sessions, top events",
    permission="metrics.view",
    tag=TAG,
    query=ReportQuery,
    response=DashboardSummary,
)
def query_dashboard(call: APICall) -> DashboardSummary:
    return dashboard_summary(call.query.context(call.scope_id))
