"""Report routes: funnels (``/api/query/funnel``) and retention (``/api/query/retention``)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...queries.filters import PropertyFilter
from ...queries.funnel import (
    DEFAULT_WINDOW_SECONDS,
    MAX_STEPS,
    MAX_WINDOW_SECONDS,
    MIN_STEPS,
    FunnelResult,
    FunnelStep,
    funnel,
)
from ...queries.retention import RetentionResult, retention
from ..router import APICall
from ..routes import router
from .params import ReportQuery

TAG = "reports"


class StepParam(BaseModel):
    """One funnel step: an event name and optional filters on its properties."""

    model_config = ConfigDict(extra="forbid")
    event: str = Field(min_length=1, max_length=200)
    filters: list[PropertyFilter] = Field(default_factory=list)


class FunnelQuery(ReportQuery):
    step: list[StepParam] = Field(
        min_length=MIN_STEPS,
        max_length=MAX_STEPS,
        description=(
            "Repeat once per step, in order: an event name, or a JSON object "
            '{"event": name, "filters": [{"key", "op", "value"}]}.'
        ),
    )
    window: int = Field(
        DEFAULT_WINDOW_SECONDS,
        ge=1,
        le=MAX_WINDOW_SECONDS,
        description="Conversion window in seconds, from the step-1 event (inclusive).",
    )
    order: Literal["ordered", "strict", "any"] = "ordered"
    breakdown: str | None = Field(
        None, max_length=200, description="Property of the step-1 event to split by."
    )
    breakdown_limit: int = Field(10, ge=1, le=100)

    @field_validator("step", mode="before")
    @classmethod
    def _parse_steps(cls, value: Any) -> Any:
        """A step starting with ``{`` is JSON; anything else is a plain event name."""
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list):
            return value
        steps: list[Any] = []
        for text in texts:
            if isinstance(text, str) and text.lstrip().startswith("{"):
                try:
                    steps.append(json.loads(text))
                except ValueError as exc:
                    raise ValueError('must be an event name or a JSON {"event", ...}') from exc
            elif isinstance(text, str):
                steps.append({"event": text})
            else:
                steps.append(text)
        return steps


@router.route(
    "/query/funnel",
    summary="Funnel: persons through ordered steps within a conversion window",
    permission="metrics.view",
    tag=TAG,
    query=FunnelQuery,
    response=FunnelResult,
)
def query_funnel(call: APICall) -> FunnelResult:
    q = call.query
    steps = [FunnelStep(s.event, tuple(s.filters)) for s in q.step]
    return funnel(
        q.context(call.scope_id),
        steps,
        window_seconds=q.window,
        order=q.order,
        breakdown=q.breakdown,
        breakdown_limit=q.breakdown_limit,
    )


class RetentionQuery(ReportQuery):
    start_event: str | None = Field(
        None, min_length=1, max_length=200, description="Default: any active event."
    )
    return_event: str | None = Field(
        None, min_length=1, max_length=200, description="Default: any active event."
    )
    period: Literal["day", "week", "month"] = "week"
    periods: int = Field(8, ge=1, le=52, description="Columns k = 0..periods.")
    mode: Literal["first_time", "recurring"] = "first_time"
    bounded: bool = Field(True, description="false: returning in P+k or any later period.")


@router.route(
    "/query/retention",
    summary="Retention cohorts by calendar period",
    permission="metrics.view",
    tag=TAG,
    query=RetentionQuery,
    response=RetentionResult,
)
def query_retention(call: APICall) -> RetentionResult:
    q = call.query
    return retention(
        q.context(call.scope_id),
        start_event=q.start_event,
        return_event=q.return_event,
        period=q.period,
        periods=q.periods,
        mode=q.mode,
        bounded=q.bounded,
    )
