"""Report routes: the persons behind a number (``/api/query/<report>/persons``).

Each route takes its report's own parameters, plus what picks the number and a page
(``limit``, ``offset``); it answers JSON, or CSV with ``format=csv`` or ``Accept: text/csv``.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Response, request
from pydantic import BaseModel, Field, model_validator

from ...errors import APIError
from ...queries.funnel import MAX_STEPS, FunnelStep, funnel_persons
from ...queries.funnel_correlation import funnel_correlation_persons
from ...queries.lifecycle import lifecycle_persons
from ...queries.people import MAX_LIMIT, MAX_OFFSET
from ...queries.persons import PersonsList, PersonSource, persons_behind, persons_csv
from ...queries.retention import MAX_PERIODS, retention_persons
from ...queries.segments import get_segment, segment_persons
from ...queries.stickiness import stickiness_persons
from ...queries.trends import trend_persons
from ..models import ScopedModel
from ..router import APICall
from ..routes import router
from .basic import TrendsQuery
from .funnel import FunnelQuery
from .funnel_correlation import check_whole_funnel
from .lifecycle import LifecycleQuery
from .retention import RetentionQuery

TAG = "reports"
PERIOD_NAMES = ("hour", "day", "week", "month")


class PageParams(BaseModel):
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    format: Literal["json", "csv"] = Field(
        "json", description="csv: the page as CSV (also with Accept: text/csv)."
    )


class FunnelPersonsQuery(FunnelQuery, PageParams):
    funnel_step: int = Field(
        ge=1, le=MAX_STEPS, description="1-based: the persons who reached this step."
    )
    dropoff: bool = Field(
        False, description="true: reached the step before funnel_step but not funnel_step."
    )
    breakdown_value: str | None = Field(
        None,
        max_length=1000,
        description=(
            "With breakdown: the group's value, as the funnel's breakdowns show it ($other for "
            "the rest; omitted: no value)."
        ),
    )


class FunnelCorrelationPersonsQuery(FunnelQuery, PageParams):
    event: str = Field(
        min_length=1,
        max_length=200,
        description="The correlation table's event (not a step's name).",
    )
    converted: bool = Field(
        description="true: the converted persons who did the event; false: the dropped ones."
    )


class RetentionPersonsQuery(RetentionQuery, PageParams):
    cohort: str = Field(
        min_length=1, max_length=40, description="The cohort's start as the report shows it."
    )
    # ``period`` names both the report's period (day, week, month) and the column k: repeat it,
    # e.g. period=week&period=2 (the name alone defaults to week).
    period: list[str] = Field(  # type: ignore[assignment]
        default_factory=list,
        description=(
            "Repeat: the column k (0..periods) and, optionally, the report's period "
            "(hour|day|week|month, default week), e.g. period=week&period=2."
        ),
    )

    breakdown_value: str | None = Field(
        None,
        max_length=200,
        description="With a breakdown: the grid's value ($other: the rest; absent: missing).",
    )

    @model_validator(mode="before")
    @classmethod
    def _split_period(cls, data: Any) -> Any:
        """Normalized to ``[name, k]``."""
        if not isinstance(data, dict):
            return data
        given = data.get("period")
        values = [given] if isinstance(given, str) else list(given or [])
        names = [v for v in values if v in PERIOD_NAMES]
        numbers = [v for v in values if v not in PERIOD_NAMES]
        if len(names) > 1 or len(numbers) != 1 or not str(numbers[0]).isdigit():
            raise ValueError(
                "period: give the column k once (0..periods), "
                "and at most one of hour|day|week|month"
            )
        if int(numbers[0]) > MAX_PERIODS:
            raise ValueError(f"period: the column k must be at most {MAX_PERIODS}")
        return {**data, "period": [names[0] if names else "week", str(int(numbers[0]))]}

    @property
    def interval(self) -> str:
        return self.period[0]

    @property
    def column(self) -> int:
        return int(self.period[1])


class TrendsPersonsQuery(TrendsQuery, PageParams):
    time: str = Field(
        min_length=1, max_length=40, description="The point's bucket start as the report shows it."
    )
    breakdown_value: str | None = Field(
        None,
        max_length=1000,
        description="With breakdown: the series' value ($other for the rest; omitted: no value).",
    )


class LifecyclePersonsQuery(LifecycleQuery, PageParams):
    time: str = Field(
        min_length=1, max_length=40, description="The period's start as the report shows it."
    )
    status: Literal["new", "returning", "resurrecting", "dormant"] = Field(
        description="The bar of that period."
    )


class StickinessPersonsQuery(LifecycleQuery, PageParams):
    periods: int = Field(
        ge=1,
        le=10_000,
        description="The bar: did the event in exactly this many periods.",
    )


def _answer(call: APICall, source: PersonSource) -> PersonsList | Response:
    q = call.query
    page = persons_behind(source, scope_id=call.scope_id, limit=q.limit, offset=q.offset)
    wants_csv = q.format == "csv" or (
        request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"
        and "format" not in request.args
    )
    if not wants_csv:
        return page
    answer = Response(persons_csv(page), content_type="text/csv; charset=utf-8")
    answer.headers["Content-Disposition"] = 'attachment; filename="persons.csv"'
    answer.headers["X-Total-Count"] = str(page.total)
    return answer


@router.route(
    "/query/funnel/persons",
    summary="The persons behind a funnel step (reached it, or dropped off before it)",
    permission="metrics.view",
    tag=TAG,
    query=FunnelPersonsQuery,
    response=PersonsList,
)
def query_funnel_persons(call: APICall) -> PersonsList | Response:
    q = call.query
    source = funnel_persons(
        q.context(call.scope_id),
        [FunnelStep(s.event, tuple(s.filters)) for s in q.step],
        funnel_step=q.funnel_step,
        dropoff=q.dropoff,
        window_seconds=q.window,
        order=q.order,
        exclusions=q.exclusions(),
        breakdown=q.breakdown,
        breakdown_limit=q.breakdown_limit,
        breakdown_value=q.breakdown_value,
        breakdown_attribution=q.breakdown_attribution,
        breakdown_attribution_step=q.breakdown_attribution_step,
    )
    return _answer(call, source)


@router.route(
    "/query/funnel/correlation/persons",
    summary=(
        "The persons behind a funnel correlation cell (converted, or dropped, and did the event "
        "between entering and converting or the end of the window)"
    ),
    permission="metrics.view",
    tag=TAG,
    query=FunnelCorrelationPersonsQuery,
    response=PersonsList,
)
def query_funnel_correlation_persons(call: APICall) -> PersonsList | Response:
    q = call.query
    check_whole_funnel(q)
    source = funnel_correlation_persons(
        q.context(call.scope_id),
        [FunnelStep(s.event, tuple(s.filters)) for s in q.step],
        event=q.event,
        converted=q.converted,
        window_seconds=q.window,
        order=q.order,
        exclusions=q.exclusions(),
    )
    return _answer(call, source)


@router.route(
    "/query/retention/persons",
    summary="The persons behind a retention cell (a cohort's members back k periods later)",
    permission="metrics.view",
    tag=TAG,
    query=RetentionPersonsQuery,
    response=PersonsList,
)
def query_retention_persons(call: APICall) -> PersonsList | Response:
    q = call.query
    source = retention_persons(
        q.context(call.scope_id),
        cohort=q.cohort,
        k=q.column,
        breakdown_value=q.breakdown_value,
        period=q.interval,
        **q.options(),
    )
    return _answer(call, source)


@router.route(
    "/query/trends/persons",
    summary="The persons behind a trend point (the unique persons of that bucket and series)",
    permission="metrics.view",
    tag=TAG,
    query=TrendsPersonsQuery,
    response=PersonsList,
)
def query_trends_persons(call: APICall) -> PersonsList | Response:
    q = call.query
    source = trend_persons(
        q.context(call.scope_id),
        time=q.time,
        event=q.event,
        interval=q.interval,
        breakdown=q.breakdown,
        breakdown_limit=q.breakdown_limit,
        breakdown_value=q.breakdown_value,
        breakdown_type=q.breakdown_type,
    )
    return _answer(call, source)


@router.route(
    "/query/lifecycle/persons",
    summary="The persons behind a lifecycle bar (new, returning, resurrecting or dormant)",
    permission="metrics.view",
    tag=TAG,
    query=LifecyclePersonsQuery,
    response=PersonsList,
)
def query_lifecycle_persons(call: APICall) -> PersonsList | Response:
    q = call.query
    source = lifecycle_persons(
        q.context(call.scope_id), time=q.time, status=q.status, event=q.event, interval=q.interval
    )
    return _answer(call, source)


@router.route(
    "/query/stickiness/persons",
    summary="The persons behind a stickiness bar (did the event in exactly N periods)",
    permission="metrics.view",
    tag=TAG,
    query=StickinessPersonsQuery,
    response=PersonsList,
)
def query_stickiness_persons(call: APICall) -> PersonsList | Response:
    q = call.query
    source = stickiness_persons(
        q.context(call.scope_id), periods=q.periods, event=q.event, interval=q.interval
    )
    return _answer(call, source)


class SegmentPersonsQuery(ScopedModel, PageParams):
    segment: str = Field(min_length=1, max_length=100, description="Key of a saved segment.")


@router.route(
    "/query/segment/persons",
    summary="The persons of a saved segment (the members its person count counts)",
    permission="metrics.view",
    tag=TAG,
    query=SegmentPersonsQuery,
    response=PersonsList,
    errors=(404,),
)
def query_segment_persons(call: APICall) -> PersonsList | Response:
    segment = get_segment(call.query.segment, scope_id=call.scope_id)
    if segment is None:
        raise APIError(404, "not_found", f"No segment {call.query.segment!r} in this scope.")
    return _answer(call, segment_persons(segment))
