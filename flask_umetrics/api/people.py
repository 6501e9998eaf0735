"""Person routes: search persons, one person's timeline."""

from __future__ import annotations

from pydantic import Field

from ..queries.people import MAX_LIMIT as MAX_SEARCH_LIMIT
from ..queries.people import MAX_OFFSET as MAX_SEARCH_OFFSET
from ..queries.people import PersonSearchResult, search_persons
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
    "/persons/<anypath:distinct_id>/timeline",
    summary="A person's events (all merged distinct ids), newest first, with sessions",
    permission="metrics.view",
    tag="persons",
    query=TimelineQuery,
    response=Timeline,
)
def person_timeline(call: APICall, distinct_id: str) -> Timeline:
    q = call.query
    return timeline(distinct_id, scope_id=call.scope_id, limit=q.limit, before=q.before)


class PersonSearchQuery(ScopedModel):
    distinct_id: str | None = Field(
        None, min_length=1, max_length=200, description="Any of the person's distinct ids."
    )
    property: str | None = Field(
        None, min_length=1, max_length=200, description="A person property key (with `value`)."
    )
    value: str | None = Field(
        None, max_length=1000, description="The property's value as text (`pro`, `5`, `true`)."
    )
    limit: int = Field(50, ge=1, le=MAX_SEARCH_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_SEARCH_OFFSET)


@router.route(
    "/persons",
    summary="Search persons by distinct id or person property, newest first",
    permission="metrics.view",
    tag="persons",
    query=PersonSearchQuery,
    response=PersonSearchResult,
)
def person_search(call: APICall) -> PersonSearchResult:
    q = call.query
    return search_persons(
        scope_id=call.scope_id,
        distinct_id=q.distinct_id,
        property=q.property,
        value=q.value,
        limit=q.limit,
        offset=q.offset,
    )
