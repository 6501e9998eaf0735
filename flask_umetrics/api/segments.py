"""REST routes for saved segments: list and read (view), save and delete (manage)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ..errors import APIError
from ..queries.segments import (
    count_segment_persons,
    delete_segment,
    get_segment,
    list_segments,
    save_segment,
)
from .models import ScopedModel
from .router import APICall
from .routes import router

TAG = "segments"


class SegmentOut(BaseModel):
    key: str
    name: str
    kind: str
    filters: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    persons: int | None = None


class SegmentList(BaseModel):
    segments: list[SegmentOut]


def _out(segment: Any, persons: int | None = None) -> SegmentOut:
    return SegmentOut(
        key=segment.key,
        name=segment.name,
        kind=segment.kind,
        filters=segment.filters,
        created_at=segment.created_at,
        updated_at=segment.updated_at,
        persons=persons,
    )


@router.route(
    "/segments",
    summary="Saved segments of the scope",
    permission="metrics.view",
    tag=TAG,
    query=ScopedModel,
    response=SegmentList,
)
def segments_list(call: APICall) -> SegmentList:
    return SegmentList(segments=[_out(s) for s in list_segments(scope_id=call.scope_id)])


class SegmentBody(ScopedModel):
    key: str = Field(min_length=1, max_length=100)
    name: str = Field("", max_length=200)
    filters: list[dict[str, Any]] | None = Field(
        None, description="Dynamic: filters {key, op, value} on person properties."
    )
    distinct_ids: list[str] | None = Field(None, description="Static: a list of distinct ids.")


@router.route(
    "/segments",
    methods=("POST",),
    summary="Create or replace a segment",
    permission="metrics.manage",
    tag=TAG,
    body=SegmentBody,
    response=SegmentOut,
    status=201,
)
def segments_save(call: APICall) -> SegmentOut:
    body = call.body
    segment = save_segment(
        body.key,
        name=body.name,
        filters=body.filters,
        distinct_ids=body.distinct_ids,
        scope_id=call.scope_id,
        actor=call.actor,
    )
    return _out(segment, count_segment_persons(segment))


@router.route(
    "/segments/<key>",
    summary="One segment with its current person count",
    permission="metrics.view",
    tag=TAG,
    query=ScopedModel,
    response=SegmentOut,
)
def segments_get(call: APICall, key: str) -> SegmentOut:
    segment = get_segment(key, scope_id=call.scope_id)
    if segment is None:
        raise APIError(404, "not_found", f"No segment {key!r} in this scope.")
    return _out(segment, count_segment_persons(segment))


class Deleted(BaseModel):
    key: str
    deleted: bool


@router.route(
    "/segments/<key>",
    methods=("DELETE",),
    summary="Delete a segment",
    permission="metrics.manage",
    tag=TAG,
    query=ScopedModel,
    response=Deleted,
)
def segments_delete(call: APICall, key: str) -> Deleted:
    actor = call.actor
    if not delete_segment(key, scope_id=call.scope_id, actor=actor):
        raise APIError(404, "not_found", f"No segment {key!r} in this scope.")
    return Deleted(key=key, deleted=True)
