"""Report route: paths (``/api/query/paths``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from ...queries.path_cleaning import MAX_PATTERN, MAX_RULES, CleaningRule
from ...queries.paths import MAX_EXCLUDE, MAX_LIMIT, MAX_STEPS, PathsResult, Unit, paths
from ..router import APICall
from ..routes import router
from .params import ReportQuery, json_objects

TAG = "reports"


class CleaningParam(BaseModel):
    pattern: str = Field(max_length=MAX_PATTERN, description="A regex (see the paths docs).")
    replacement: str = Field(max_length=MAX_PATTERN, description="Literal text, no '\\'.")


class PathsQuery(ReportQuery):
    start_event: str | None = Field(
        None, max_length=200, description="Start at this step (default: each first step)."
    )
    end_event: str | None = Field(
        None, max_length=200, description="Instead: the steps leading to this one, counted back."
    )
    steps: int = Field(5, ge=1, le=MAX_STEPS)
    limit: int = Field(10, ge=1, le=MAX_LIMIT, description="Transitions shown per step.")
    unit: Unit = Field("person", description="One path per person, or per session.")
    pathnames: bool = Field(False, description="Show a $pageview as its $pathname.")
    exclude: list[str] = Field(
        default_factory=list,
        max_length=MAX_EXCLUDE,
        description="Events or steps (pathnames) left out of the paths; repeat the parameter.",
    )
    cleaning: list[CleaningParam] = Field(
        default_factory=list,
        max_length=MAX_RULES,
        description='JSON list of {"pattern", "replacement"} rules applied in order.',
    )

    @field_validator("cleaning", mode="before")
    @classmethod
    def _parse_cleaning(cls, value: Any) -> Any:
        """``cleaning=`` is a JSON list (or one object); repeats add up."""
        return json_objects(value, "must be a JSON list of {pattern, replacement} objects")


@router.route(
    "/query/paths",
    summary="Most frequent next (or previous) steps, step by step",
    permission="metrics.view",
    tag=TAG,
    query=PathsQuery,
    response=PathsResult,
)
def query_paths(call: APICall) -> PathsResult:
    q = call.query
    return paths(
        q.context(call.scope_id),
        start_event=q.start_event,
        end_event=q.end_event,
        steps=q.steps,
        limit=q.limit,
        unit=q.unit,
        pathnames=q.pathnames,
        exclude=q.exclude,
        cleaning=[CleaningRule(c.pattern, c.replacement) for c in q.cleaning],
    )
