"""Report route: funnel correlation (``/api/query/funnel/correlation``)."""

from __future__ import annotations

from pydantic import Field

from ...errors import ValidationError
from ...queries.funnel import FunnelStep
from ...queries.funnel_correlation import (
    DEFAULT_LIMIT,
    DEFAULT_MIN_PERSONS,
    MAX_EXCLUDED_EVENTS,
    MAX_LIMIT,
    FunnelCorrelationResult,
    funnel_correlation,
)
from ..router import APICall
from ..routes import router
from .funnel import FunnelQuery

TAG = "reports"


class FunnelCorrelationQuery(FunnelQuery):
    """The funnel's own parameters (steps, window, order, exclusions, filters, range), without
    a breakdown or another mode, and what picks the events."""

    limit: int = Field(
        DEFAULT_LIMIT,
        ge=1,
        le=MAX_LIMIT,
        description="At most this many events of each kind (success, failure).",
    )
    min_persons: int = Field(
        DEFAULT_MIN_PERSONS,
        ge=1,
        le=1_000_000_000,
        description="Leave out the events done by fewer persons (converted and dropped).",
    )
    exclude_events: list[str] = Field(
        default_factory=list,
        max_length=MAX_EXCLUDED_EVENTS,
        description="Repeat: event names to leave out (the steps' names always are).",
    )


def check_whole_funnel(q: FunnelQuery) -> None:
    """Correlation reads the whole funnel's steps view: no breakdown, no other mode."""
    if q.breakdown is not None:
        raise ValidationError("breakdown", "is not available in funnel correlation")
    if q.mode != "steps":
        raise ValidationError("mode", "funnel correlation has only mode=steps")
    if q.breakdown_attribution != "entry" or q.breakdown_attribution_step is not None:
        raise ValidationError("breakdown_attribution", "needs a breakdown")


@router.route(
    "/query/funnel/correlation",
    summary="Funnel correlation: the events most associated with converting or dropping off",
    permission="metrics.view",
    tag=TAG,
    query=FunnelCorrelationQuery,
    response=FunnelCorrelationResult,
)
def query_funnel_correlation(call: APICall) -> FunnelCorrelationResult:
    q = call.query
    check_whole_funnel(q)
    return funnel_correlation(
        q.context(call.scope_id),
        [FunnelStep(s.event, tuple(s.filters)) for s in q.step],
        window_seconds=q.window,
        order=q.order,
        exclusions=q.exclusions(),
        limit=q.limit,
        min_persons=q.min_persons,
        exclude_events=q.exclude_events,
    )
