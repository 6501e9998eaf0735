"""REST ingestion: batches of events and identify calls, with a per-scope write key."""

from __future__ import annotations

from typing import Any, ClassVar

from flask import request
from pydantic import BaseModel, Field

from ..auth import IDENTIFY, may_require
from ..errors import APIError
from ..events import IngestResult, identify, ingest_events
from ..state import current_state
from .models import ScopedModel
from .router import APICall
from .routes import router

TAG = "ingest"


class IngestBody(ScopedModel):
    #: Each event is checked on its own (NUL characters included): one bad event is rejected,
    #: the others are stored.
    nul_checked_per_item: ClassVar[tuple[str, ...]] = ("events",)
    events: list[Any] = Field(
        description="Events: event, distinct_id, properties, timestamp, uuid, session_id, active."
    )
    api_key: str | None = Field(None, description="The write key, if not sent as a header.")


class Rejected(BaseModel):
    index: int
    field: str
    error: str


class IngestResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejected]
    filtered: int = Field(description="Dropped on purpose: bots, Do-Not-Track.")


def _from_browser() -> bool:
    return "Origin" in request.headers or "Sec-Fetch-Site" in request.headers


def check_batch_size(events: list[Any]) -> None:
    """413 naming ``events`` when a batch is larger than ``UMETRICS_MAX_BATCH_EVENTS``."""
    limit = current_state().settings["UMETRICS_MAX_BATCH_EVENTS"]
    if len(events) > limit:
        raise APIError(
            413,
            "too_many_events",
            f"events: a batch may hold at most {limit} events, got {len(events)}",
            [{"field": "events", "message": f"at most {limit} events"}],
        )


def ingest_request_batch(batch: list[Any], scope_id: str) -> IngestResult:
    """Ingest events sent by this request: a browser's user agent and Do-Not-Track apply."""
    browser = _from_browser()
    dnt = browser and (request.headers.get("DNT") == "1" or request.headers.get("Sec-GPC") == "1")
    return ingest_events(
        batch,
        scope_id=scope_id,
        user_agent=request.headers.get("User-Agent") if browser else None,
        do_not_track=dnt,
    )


@router.route(
    "/events",
    methods=("POST",),
    summary="Ingest a batch of events (valid ones are stored even when others are rejected)",
    permission="ingest",
    tag=TAG,
    body=IngestBody,
    response=IngestResponse,
)
def events_ingest(call: APICall) -> IngestResponse:
    check_batch_size(call.body.events)
    result = ingest_request_batch(call.body.events, call.scope_id)
    return IngestResponse.model_validate(result.to_dict())


class IdentifyBody(ScopedModel):
    distinct_id: str = Field(min_length=1, max_length=200)
    anon_id: str | None = Field(None, min_length=1, max_length=200)
    traits: dict[str, Any] | None = None
    api_key: str | None = None


class IdentifyResponse(BaseModel):
    distinct_id: str
    merged: bool


@may_require(IDENTIFY)
@router.route(
    "/identify",
    methods=("POST",),
    summary="Link an anonymous id to a known user (retroactive merge) and set traits; merging "
    "identified persons or changing an identified person's traits needs 'identify' too",
    permission="ingest",
    tag=TAG,
    body=IdentifyBody,
    response=IdentifyResponse,
)
def identify_person(call: APICall) -> IdentifyResponse:
    identify(
        call.body.distinct_id,
        anon_id=call.body.anon_id,
        traits=call.body.traits,
        scope_id=call.scope_id,
        caller=call.principal,
    )
    return IdentifyResponse(distinct_id=call.body.distinct_id, merged=call.body.anon_id is not None)
