"""Report route: first-seen cohorts (``/api/query/cohorts``)."""

from __future__ import annotations

from typing import Literal

from ...queries.cohorts import CohortsResult, first_seen_cohorts
from ..router import APICall
from ..routes import router
from .params import ReportQuery

TAG = "reports"


class CohortsQuery(ReportQuery):
    period: Literal["day", "week", "month"] = "week"


@router.route(
    "/query/cohorts",
    summary="Persons by the period they were first seen in",
    permission="metrics.view",
    tag=TAG,
    query=CohortsQuery,
    response=CohortsResult,
)
def query_cohorts(call: APICall) -> CohortsResult:
    q = call.query
    return first_seen_cohorts(q.context(call.scope_id), period=q.period)
