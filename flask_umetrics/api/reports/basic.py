"""Routes of the basic reports: volume, trends, top events / values, active users."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ...errors import ValidationError
from ...queries.active import ActiveCount, ActiveSeries, active_user_series, active_users
from ...queries.sql import check_property_key
from ...queries.top import TopResult, top
from ...queries.trends import Math, TrendsResult, VolumeResult, trends, volume
from ...queries.trends_series import SeriesSpec, trends_series
from ..router import APICall
from ..routes import router
from .params import ReportQuery

TAG = "reports"
Interval = Literal["hour", "day", "week", "month"]


def _property_key(value: str | None, info: ValidationInfo) -> str | None:
    """A property key both databases can address, refused under the parameter's own name."""
    if value is not None:
        try:
            check_property_key(value, info.field_name or "property")
        except ValidationError as exc:
            raise ValueError(exc.message) from None
    return value


class VolumeQuery(ReportQuery):
    event: str | None = Field(None, max_length=200, description="Only this event (default all).")
    interval: Interval = "day"
    compare: Literal["previous"] | None = Field(
        None, description="previous: add the same report over the previous range as `previous`."
    )


@router.route(
    "/query/volume",
    summary="Events per calendar bucket",
    permission="metrics.view",
    tag=TAG,
    query=VolumeQuery,
    response=VolumeResult,
)
def query_volume(call: APICall) -> VolumeResult:
    q = call.query
    return volume(q.context(call.scope_id), event=q.event, interval=q.interval, compare=q.compare)


class SeriesParam(BaseModel):
    """One lettered series of a several-series trends report."""

    model_config = ConfigDict(extra="forbid")
    event: str | None = Field(None, min_length=1, max_length=200)
    math: Math = "total"
    property: str | None = Field(None, max_length=200)

    _keys = field_validator("property")(_property_key)


class TrendsQuery(VolumeQuery):
    math: Math = "total"
    property: str | None = Field(
        None,
        max_length=200,
        description="Numeric property of sum/avg/min/max/median/p75/p90/p95/p99.",
    )
    cumulative: bool = Field(False, description="Running totals (math total or sum).")
    series: list[SeriesParam] | None = Field(
        None,
        max_length=10,
        description="JSON list of {event, math, property}: several series A, B, ... "
        "(event, math and property are then ignored).",
    )
    formula: str | None = Field(
        None, max_length=200, description="Over the series' letters, e.g. A/B*100."
    )

    @field_validator("series", mode="before")
    @classmethod
    def _parse_series(cls, value: Any) -> Any:
        """``series=`` is one JSON list of objects."""
        text = value[0] if isinstance(value, list) and len(value) == 1 else value
        if not isinstance(text, str):
            return value
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError("must be a JSON list of {event, math, property} objects") from exc

    breakdown: str | None = Field(
        None,
        max_length=200,
        description="Property to split by (breakdown_type segment: a saved segment's key).",
    )
    breakdown_type: Literal["event", "person", "segment"] = Field(
        "event",
        description="event: an event property; person: the person's current property; "
        "segment: two series, in and out of the saved segment `breakdown`.",
    )
    breakdown_limit: int = Field(10, ge=1, le=100)

    _keys = field_validator("property", "breakdown")(_property_key)


@router.route(
    "/query/trends",
    summary="Trends with math, breakdown and filters",
    permission="metrics.view",
    tag=TAG,
    query=TrendsQuery,
    response=TrendsResult,
)
def query_trends(call: APICall) -> TrendsResult:
    q = call.query
    if q.series is not None or q.formula is not None:
        specs = [SeriesSpec(s.event, s.math, s.property) for s in q.series or []]
        return trends_series(
            q.context(call.scope_id),
            specs,
            formula=q.formula,
            interval=q.interval,
            breakdown=q.breakdown,
            breakdown_limit=q.breakdown_limit,
            cumulative=q.cumulative,
            compare=q.compare,
            breakdown_type=q.breakdown_type,
        )
    return trends(
        q.context(call.scope_id),
        event=q.event,
        interval=q.interval,
        math=q.math,
        property=q.property,
        breakdown=q.breakdown,
        breakdown_limit=q.breakdown_limit,
        compare=q.compare,
        cumulative=q.cumulative,
        breakdown_type=q.breakdown_type,
    )


class TopQuery(ReportQuery):
    event: str | None = Field(None, max_length=200, description="With property: top values.")
    property: str | None = Field(None, max_length=200)
    limit: int = Field(10, ge=1, le=1000)

    _keys = field_validator("property")(_property_key)


@router.route(
    "/query/top",
    summary="Top events, or top values of an event's property",
    permission="metrics.view",
    tag=TAG,
    query=TopQuery,
    response=TopResult,
)
def query_top(call: APICall) -> TopResult:
    q = call.query
    return top(q.context(call.scope_id), event=q.event, property=q.property, limit=q.limit)


class ActiveQuery(ReportQuery):
    series: Literal["dau", "wau", "mau"] | None = None


@router.route(
    "/query/active",
    summary="Active persons in range, or a DAU/WAU/MAU series",
    permission="metrics.view",
    tag=TAG,
    query=ActiveQuery,
    response=ActiveCount | ActiveSeries,
)
def query_active(call: APICall) -> ActiveCount | ActiveSeries:
    q = call.query
    ctx = q.context(call.scope_id)
    if q.series is None:
        return active_users(ctx)
    return active_user_series(ctx, window=q.series)
