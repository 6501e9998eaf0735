"""Route of the safe ad-hoc query: ``POST /api/query`` with a JSON spec (never SQL)."""

from __future__ import annotations

from ...queries.adhoc import QueryResult, QuerySpec, run_query
from ..params import DateTimeParam
from ..router import APICall
from ..routes import router


class QueryBody(QuerySpec):
    """The spec plus ``scope_id``; dates as ISO 8601 (a date alone: midnight in
    ``UMETRICS_TIMEZONE``)."""

    scope_id: str | None = None
    date_from: DateTimeParam | None = None
    date_to: DateTimeParam | None = None


@router.route(
    "/query",
    methods=("POST",),
    summary="Ad-hoc query over events and person properties (whitelisted fields, bound values)",
    permission="metrics.view",
    tag="reports",
    body=QueryBody,
    response=QueryResult,
)
def query_adhoc(call: APICall) -> QueryResult:
    return run_query(call.body, scope_id=call.scope_id)
