"""Report route: funnels (``/api/query/funnel``)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
        exclusions=q.exclusions(),
    )
