"""Routes of the behaviour reports: sessions, paths, and the dashboard summary."""

from __future__ import annotations

from pydantic import Field

from ...queries.dashboard import DashboardSummary, dashboard_summary
from ...queries.paths import MAX_LIMIT, MAX_STEPS, PathsResult, paths
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


class PathsQuery(ReportQuery):
    start_event: str | None = Field(
        None, max_length=200, description="Start at this event (default: each first event)."
    )
    steps: int = Field(5, ge=1, le=MAX_STEPS)
    limit: int = Field(10, ge=1, le=MAX_LIMIT, description="Transitions shown per step.")


@router.route(
    "/query/paths",
    summary="Most frequent next events, step by step",
    permission="metrics.view",
    tag=TAG,
    query=PathsQuery,
    response=PathsResult,
)
def query_paths(call: APICall) -> PathsResult:
    q = call.query
    return paths(q.context(call.scope_id), start_event=q.start_event, steps=q.steps, limit=q.limit)


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
