"""Person routes: one person's timeline."""

from __future__ import annotations

from pydantic import Field

from ..queries.timeline import MAX_LIMIT, Timeline, timeline
from .models import ScopedModel
from .router import APICall
from .routes import router


class TimelineQuery(ScopedModel):
    limit: int = Field(50, ge=1, le=MAX_LIMIT, description="Events per page.")
    before: str | None = Field(
        None, max_length=200, description="The `next` cursor of the previous page."
    )


@router.route(
    "/persons/<path:distinct_id>/timeline",
    summary="A person's events (all merged distinct ids), newest first, with sessions",
    permission="metrics.view",
    tag="persons",
    query=TimelineQuery,
    response=Timeline,
)
def person_timeline(call: APICall, distinct_id: str) -> Timeline:
    q = call.query
    return timeline(distinct_id, scope_id=call.scope_id, limit=q.limit, before=q.before)
