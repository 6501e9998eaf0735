"""Report route: funnels (``/api/query/funnel``)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...errors import ValidationError
from ...queries.filters import PropertyFilter
from ...queries.funnel import (
    DEFAULT_WINDOW_SECONDS,
    MAX_EXCLUSIONS,
    MAX_STEPS,
    MAX_WINDOW_SECONDS,
    MIN_STEPS,
    FunnelExclusion,
    FunnelResult,
    FunnelStep,
    funnel,
)
from ...queries.funnel_modes import (
    DEFAULT_BINS,
    MAX_BINS,
    FunnelTimeToConvertResult,
    FunnelTrendsResult,
    funnel_time_to_convert,
    funnel_trends,
)
from ..router import APICall
from ..routes import router
from .params import ReportQuery, json_objects

TAG = "reports"


class StepParam(BaseModel):
    """One funnel step: an event name and optional filters on its properties."""

    model_config = ConfigDict(extra="forbid")
    event: str = Field(min_length=1, max_length=200)
    filters: list[PropertyFilter] = Field(default_factory=list)


class ExclusionParam(BaseModel):
    """An event that drops an attempt when it happens between two of its steps (0-based)."""

    model_config = ConfigDict(extra="forbid")
    event: str = Field(min_length=1, max_length=200)
    filters: list[PropertyFilter] = Field(default_factory=list)
    from_step: int = Field(ge=0, lt=MAX_STEPS)
    to_step: int = Field(ge=1, lt=MAX_STEPS)


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
    breakdown_attribution: Literal["entry", "first_touch", "last_touch", "step"] = Field(
        "entry",
        description=(
            "Which event's value a person is counted under: entry (the step-1 event of their "
            "chosen attempt), first_touch / last_touch (the first / last value present over "
            "their events matching any step), step (the event of breakdown_attribution_step "
            "in their chosen attempt; not in order=any)."
        ),
    )
    breakdown_attribution_step: int | None = Field(
        None, ge=0, lt=MAX_STEPS, description="0-based step, with breakdown_attribution=step."
    )
    exclude: list[ExclusionParam] = Field(
        default_factory=list,
        max_length=MAX_EXCLUSIONS,
        description=(
            'A JSON list of {"event", "filters", "from_step", "to_step"} (0-based steps, '
            "from_step < to_step): an attempt with such an event strictly between those steps "
            "(or after from_step until its window ends, when it never reached to_step) is "
            "dropped. In order=any only from_step 0 to the last step."
        ),
    )

    mode: Literal["steps", "trends", "time_to_convert"] = Field(
        "steps",
        description=(
            "steps: persons per step. trends: per entry period (interval), the persons whose "
            "step-1 event falls in it and the share of them reaching the last step within the "
            "window. time_to_convert: average, median and histogram (bins) of the seconds from "
            "from_step to to_step over the persons who reached to_step."
        ),
    )
    interval: Literal["day", "week", "month"] = Field(
        "day", description="mode=trends: the entry periods, in the scope's time zone."
    )
    from_step: int = Field(
        0, ge=0, lt=MAX_STEPS, description="mode=time_to_convert: 0-based, as exclusions."
    )
    to_step: int | None = Field(
        None,
        ge=1,
        lt=MAX_STEPS,
        description="mode=time_to_convert: 0-based; the last step when omitted.",
    )
    bins: int = Field(
        DEFAULT_BINS, ge=1, le=MAX_BINS, description="mode=time_to_convert: histogram bins."
    )

    @field_validator("exclude", mode="before")
    @classmethod
    def _parse_exclude(cls, value: Any) -> Any:
        """``exclude=`` is a JSON list (or one object); repeats add up."""
        return json_objects(value, 'must be a JSON list of {"event", "from_step", "to_step"}')

    def exclusions(self) -> list[FunnelExclusion]:
        return [
            FunnelExclusion(x.event, tuple(x.filters), x.from_step, x.to_step) for x in self.exclude
        ]

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
    summary="Funnel: persons through steps, conversion per entry period, or time to convert",
    permission="metrics.view",
    tag=TAG,
    query=FunnelQuery,
    response=FunnelResult | FunnelTrendsResult | FunnelTimeToConvertResult,
)
def query_funnel(call: APICall) -> FunnelResult | FunnelTrendsResult | FunnelTimeToConvertResult:
    q = call.query
    steps = [FunnelStep(s.event, tuple(s.filters)) for s in q.step]
    ctx = q.context(call.scope_id)
    if q.mode != "steps" and q.breakdown is not None:
        raise ValidationError("breakdown", "only with mode=steps")
    if q.breakdown_attribution != "entry" and q.breakdown is None:
        raise ValidationError("breakdown_attribution", "needs a breakdown")
    if q.mode == "trends":
        return funnel_trends(
            ctx,
            steps,
            interval=q.interval,
            window_seconds=q.window,
            order=q.order,
            exclusions=q.exclusions(),
        )
    if q.mode == "time_to_convert":
        return funnel_time_to_convert(
            ctx,
            steps,
            from_step=q.from_step,
            to_step=q.to_step,
            bins=q.bins,
            window_seconds=q.window,
            order=q.order,
            exclusions=q.exclusions(),
        )
    return funnel(
        ctx,
        steps,
        window_seconds=q.window,
        order=q.order,
        breakdown=q.breakdown,
        breakdown_limit=q.breakdown_limit,
        exclusions=q.exclusions(),
        breakdown_attribution=q.breakdown_attribution,
        breakdown_attribution_step=q.breakdown_attribution_step,
    )
