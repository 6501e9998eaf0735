"""togo analytics' REST API (``togo-framework/analytics``) at ``UMETRICS_TOGO_API_PATH``.

Existing togo clients (its JS snippet, scripts reading its reports) keep working: the request
and response shapes are togo's, the numbers are ours (persons after identity merges, half-open
ranges in ``UMETRICS_TIMEZONE``). Writes need the scope's write key (``ingest``), reads
``metrics.view``, exactly as the native API.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from flask import Blueprint
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...auth import IDENTIFY, may_require
from ...db.types import utcnow
from ...errors import ValidationError
from ...events import identify
from ...events.identity import link_anonymous_ids
from ...events.validation import MAX_ID_LENGTH, Limits, normalize_event
from ...queries.active import active_users
from ...queries.buckets import floor_to, next_start
from ...queries.context import ReportContext, report_context
from ...queries.dashboard import dashboard_summary
from ...queries.funnel import FunnelStep, funnel
from ...queries.retention import retention
from ...queries.sql import check_property_key
from ...queries.top import TopResult, top
from ...queries.trends import volume
from ...state import current_state
from ..ingest import check_batch_size, ingest_request_batch
from ..models import ScopedModel
from ..params import DateTimeParam
from ..router import APICall, ApiRouter

TAG = "togo"
router = ApiRouter("umetrics_togo", __name__)

#: togo's event fields, plus our optional extensions (uuid for retries, session_id, active).
EVENT_FIELDS = frozenset(
    {"name", "user_id", "anon_id", "properties", "timestamp", "uuid", "session_id", "active"}
)
#: Go's zero ``time.Time``, which togo clients send when they leave the timestamp unset.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def create_blueprint() -> Blueprint:
    """The blueprint to register at ``UMETRICS_TOGO_API_PATH`` (``{prefix}/api/analytics``)."""
    return router.blueprint


def _count(value: float) -> int:
    return round(value)


class ReportQuery(ScopedModel):
    """A togo report's query: unknown parameters (a client's cache-buster ``_=``) are ignored,
    as togo ignores them; the known ones are checked as strictly as ever."""

    model_config = ConfigDict(extra="ignore")


class RangeQuery(ReportQuery):
    """togo's ``from`` / ``to`` (RFC 3339 or a date; half-open; default the last 30 days)."""

    date_from: DateTimeParam | None = Field(None, alias="from")
    date_to: DateTimeParam | None = Field(None, alias="to")

    def context(self, scope_id: str) -> ReportContext:
        return report_context(scope_id=scope_id, date_from=self.date_from, date_to=self.date_to)


# --- ingestion -------------------------------------------------------------------------------


class EventsBody(ScopedModel):
    #: A bare JSON array body is the events list, as togo's handler takes it.
    bare_list_field: ClassVar[str] = "events"
    events: list[Any] = Field(
        description="togo events: name, user_id and/or anon_id, properties, timestamp."
    )
    api_key: str | None = None


class Rejected(BaseModel):
    index: int
    field: str
    error: str


class EventsResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejected]


def _check_id(raw: dict[str, Any], field: str) -> str | None:
    value = raw.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise ValidationError(field, f"must be a string of 1-{MAX_ID_LENGTH} characters")
    return value


def to_event(raw: Any) -> tuple[dict[str, Any], str | None]:
    """A togo event as our event, and the anonymous id to merge into its user (if both given)."""
    if not isinstance(raw, dict):
        raise ValidationError("event", "each event must be a JSON object")
    unknown = sorted(set(raw) - EVENT_FIELDS)
    if unknown:
        raise ValidationError(unknown[0], "is not a togo event field")
    user_id, anon_id = _check_id(raw, "user_id"), _check_id(raw, "anon_id")
    distinct_id = user_id or anon_id
    if distinct_id is None:
        # Not stored: a generated id would count each such event as a new person.
        raise ValidationError(
            "user_id", "user_id or anon_id is required (an event of nobody is not stored)"
        )
    event: dict[str, Any] = {"event": raw.get("name"), "distinct_id": distinct_id}
    timestamp = raw.get("timestamp")
    if timestamp not in (None, "", GO_ZERO_TIME):
        event["timestamp"] = timestamp
    for field in ("properties", "uuid", "session_id", "active"):
        if raw.get(field) is not None:
            event[field] = raw[field]
    if event["event"] is None:
        raise ValidationError("name", "is required")
    merge = anon_id if user_id is not None and anon_id not in (None, user_id) else None
    return event, merge


@may_require(IDENTIFY)
@router.route(
    "/events",
    methods=("POST",),
    summary="togo: batch ingest {events: [{name, user_id, anon_id, properties, timestamp}]}",
    permission="ingest",
    tag=TAG,
    body=EventsBody,
    response=EventsResponse,
)
def togo_events(call: APICall) -> EventsResponse:
    check_batch_size(call.body.events)
    batch: list[dict[str, Any]] = []
    positions: list[int] = []
    merges: dict[int, tuple[str, str]] = {}
    rejected: list[Rejected] = []
    for index, raw in enumerate(call.body.events):
        try:
            event, merge = to_event(raw)
        except ValidationError as error:
            rejected.append(Rejected(index=index, field=error.field, error=str(error)))
            continue
        if merge is not None:
            merges[len(batch)] = (event["distinct_id"], merge)
        batch.append(event)
        positions.append(index)
    # An event carrying both ids links them, as togo does: the anonymous past joins the user.
    # The links go first, in one transaction: one the caller may not make (an identified
    # person, without 'identify') refuses the request before any event is stored.
    link_anonymous_ids(
        {pair for i, pair in merges.items() if _valid(batch[i], call.scope_id)},
        scope_id=call.scope_id,
        caller=call.principal,
    )
    result = ingest_request_batch(batch, call.scope_id)
    for item in result.rejected:
        rejected.append(
            Rejected(index=positions[item["index"]], field=item["field"], error=item["error"])
        )
    rejected.sort(key=lambda r: r.index)
    return EventsResponse(accepted=result.accepted, duplicates=result.duplicates, rejected=rejected)


def _valid(event: dict[str, Any], scope_id: str) -> bool:
    """Whether ingestion will accept ``event`` (only an accepted event links its ids)."""
    try:
        normalize_event(event, scope_id, Limits.from_settings(current_state().settings), utcnow())
    except ValidationError:
        return False
    return True


class IdentifyBody(ScopedModel):
    user_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    traits: dict[str, Any] | None = None
    anon_id: str | None = Field(None, min_length=1, max_length=MAX_ID_LENGTH)
    api_key: str | None = None


class IdentifyResponse(BaseModel):
    user_id: str
    merged: bool


@may_require(IDENTIFY)
@router.route(
    "/identify",
    methods=("POST",),
    summary="togo: identify {user_id, traits} (with anon_id: merge the anonymous user)",
    permission="ingest",
    tag=TAG,
    body=IdentifyBody,
    response=IdentifyResponse,
)
def togo_identify(call: APICall) -> IdentifyResponse:
    body = call.body
    identify(
        body.user_id,
        anon_id=body.anon_id,
        traits=body.traits,
        scope_id=call.scope_id,
        caller=call.principal,
    )
    return IdentifyResponse(user_id=body.user_id, merged=body.anon_id is not None)


# --- reports ---------------------------------------------------------------------------------


class VolumeQuery(RangeQuery):
    event: str | None = Field(None, max_length=200, description="Only this event (default all).")
    bucket: Literal["hour", "day", "week", "month"] = "day"


class VolumePoint(BaseModel):
    time: str
    count: int


@router.route(
    "/volume",
    summary="togo: events per bucket (every bucket present)",
    permission="metrics.view",
    tag=TAG,
    query=VolumeQuery,
    response=list[VolumePoint],
)
def togo_volume(call: APICall) -> list[dict[str, Any]]:
    q = call.query
    result = volume(q.context(call.scope_id), event=q.event or None, interval=q.bucket)
    return [{"time": p.time, "count": p.count} for p in result.series]


class TopQuery(RangeQuery):
    event: str | None = Field(None, max_length=200, description="With property: its top values.")
    property: str | None = Field(None, max_length=200)
    limit: int = Field(10, ge=1, le=1000)

    @field_validator("property")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        """A key both databases can address, refused as ``property`` (not the query's "key")."""
        if value is not None:
            try:
                check_property_key(value, "property")
            except ValidationError as exc:
                raise ValueError(exc.message) from None
        return value


class Count(BaseModel):
    key: str
    count: int


def _counts(result: TopResult) -> list[dict[str, Any]]:
    return [{"key": item.key, "count": _count(item.count)} for item in result.items]


@router.route(
    "/top",
    summary="togo: top events, or top values of an event's property",
    permission="metrics.view",
    tag=TAG,
    query=TopQuery,
    response=list[Count],
)
def togo_top(call: APICall) -> list[dict[str, Any]]:
    q = call.query
    return _counts(top(q.context(call.scope_id), event=q.event, property=q.property, limit=q.limit))


class FunnelQuery(RangeQuery):
    step: list[str] = Field(min_length=1, max_length=20, description="Repeat: ?step=a&step=b")
    window: int = Field(14 * 86400, ge=1, le=366 * 86400, description="Seconds.")
    order: Literal["ordered", "strict", "any"] = "ordered"

    @field_validator("step")
    @classmethod
    def _names(cls, steps: list[str]) -> list[str]:
        if any(not s or len(s) > 200 for s in steps):
            raise ValueError("each step is an event name of 1-200 characters")
        return steps


class FunnelStepOut(BaseModel):
    event: str
    count: int
    conversion: float = Field(description="Fraction of step 1 that reached this step.")


@router.route(
    "/funnel",
    summary="togo: ordered conversion (?step=a&step=b&...)",
    permission="metrics.view",
    tag=TAG,
    query=FunnelQuery,
    response=list[FunnelStepOut],
)
def togo_funnel(call: APICall) -> list[dict[str, Any]]:
    q = call.query
    result = funnel(
        q.context(call.scope_id),
        [FunnelStep(name) for name in q.step],
        window_seconds=q.window,
        order=q.order,
    )
    return [
        {
            "event": step.event,
            "count": _count(step.count),
            "conversion": step.conversion_from_start,
        }
        for step in result.steps
    ]


class RetentionQuery(ReportQuery):
    date_from: DateTimeParam | None = Field(None, alias="from")
    date_to: DateTimeParam | None = Field(None, alias="to")
    offset: list[int] = Field(default_factory=list, description="Day offsets; repeat.")
    offsets: str | None = Field(None, max_length=400, description="Or comma-separated: 0,1,7")
    start_event: str | None = Field(None, max_length=200)
    return_event: str | None = Field(None, max_length=200)

    def day_offsets(self) -> list[int]:
        values = list(self.offset)
        for part in (self.offsets or "").split(","):
            if part.strip():
                try:
                    values.append(int(part))
                except ValueError as exc:
                    raise ValidationError("offsets", "must be comma-separated integers") from exc
        values = sorted(set(values or [0, 1, 7]))
        if values[0] < 0 or values[-1] > 366:
            raise ValidationError("offsets", "each offset must be 0-366 days")
        return values


class RetentionRow(BaseModel):
    """togo's ``RetentionRow``: persons of the cohort active again ``offset_days`` later."""

    offset_days: int
    returned: int


@router.route(
    "/retention",
    summary="togo: day-N retention of the persons first seen on the day 'from' (or in [from, to))",
    permission="metrics.view",
    tag=TAG,
    query=RetentionQuery,
    response=list[RetentionRow],
)
def togo_retention(call: APICall) -> list[dict[str, Any]]:
    q = call.query
    offsets = q.day_offsets()
    date_to = q.date_to
    if q.date_from is not None and date_to is None:
        date_to = _next_day(q.date_from)
    ctx = report_context(scope_id=call.scope_id, date_from=q.date_from, date_to=date_to)
    result = retention(
        ctx,
        start_event=q.start_event,
        return_event=q.return_event,
        period="day",
        periods=offsets[-1],
        mode="first_time",
        bounded=True,
    )
    return [
        {
            "offset_days": offset,
            "returned": sum(_count(cohort.counts[offset]) for cohort in result.cohorts),
        }
        for offset in offsets
    ]


def _zone() -> ZoneInfo:
    return ZoneInfo(current_state().settings.timezone)


def _next_day(moment: datetime) -> datetime:
    """Midnight after ``moment``'s day in ``UMETRICS_TIMEZONE``."""
    zone = _zone()
    return next_start(floor_to(moment, "day", zone), "day", zone)


@router.route(
    "/active",
    summary="togo: distinct persons with an active event in [from, to)",
    permission="metrics.view",
    tag=TAG,
    query=RangeQuery,
    response=int,
)
def togo_active(call: APICall) -> int:
    """A bare JSON number: togo's client decodes the answer into an ``int``."""
    return _count(active_users(call.query.context(call.scope_id)).count)


class DashboardQuery(ReportQuery):
    days: int = Field(7, ge=1, le=366)
    date_to: DateTimeParam | None = Field(
        None, alias="to", description="End of the window (default: tomorrow's midnight)."
    )


class DashboardOut(BaseModel):
    total_events: int
    dau: int
    wau: int
    top_events: list[Count]


@router.route(
    "/dashboard",
    summary="togo: overview of the last 'days' days (total events, DAU, WAU, top events)",
    permission="metrics.view",
    tag=TAG,
    query=DashboardQuery,
    response=DashboardOut,
)
def togo_dashboard(call: APICall) -> DashboardOut:
    q = call.query
    end = report_context(scope_id=call.scope_id, date_to=q.date_to).date_to
    zone = _zone()
    try:
        start = floor_to(end.astimezone(zone) - timedelta(days=q.days), "day", zone)
    except OverflowError as exc:
        raise ValidationError("to", "is out of range") from exc
    ctx = report_context(scope_id=call.scope_id, date_from=start, date_to=end)
    summary = dashboard_summary(ctx)
    return DashboardOut(
        total_events=_count(summary.total_events),
        dau=_count(summary.dau),
        wau=_count(summary.wau),
        top_events=[Count(key=i.key, count=_count(i.count)) for i in summary.top_events],
    )
