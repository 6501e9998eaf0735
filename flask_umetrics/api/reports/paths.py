"""Report route: paths (``/api/query/paths``)."""

from __future__ import annotations

from pydantic import Field

from ...queries.paths import MAX_LIMIT, MAX_STEPS, PathsResult, paths
from ..router import APICall
from ..routes import router
from .params import ReportQuery

TAG = "reports"


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
