"""REST routes of saved insights: list, read and run (view); create, change, delete (manage);
and the JSON export (view) and import (manage) of a scope's insights and dashboards."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from ..errors import APIError
from ..insights import INSIGHT_KINDS, Insight, Overrides, run_insight
from ..insights import store as insight_store
from ..insights.checks import MAX_ID
from ..insights.transfer import export_insights, import_insights
from ..queries.filters import PropertyFilter
from .models import ScopedModel
from .params import DateTimeParam
from .reports.params import json_filters
from .router import APICall
from .routes import router

TAG = "insights"
KINDS = ", ".join(INSIGHT_KINDS)


class InsightList(BaseModel):
    insights: list[Insight]


def path_id(text: str, what: str) -> int:
    """A path's numeric id; anything else (or one past 64 bits) is a 404 like a missing one."""
    if text.isascii() and text.isdigit() and 0 < len(text) <= 19:
        number = int(text)
        if 1 <= number <= MAX_ID:
            return number
    raise not_found(what, text)


def not_found(what: str, text: object) -> APIError:
    return APIError(404, "not_found", f"No {what} {text} in this scope.")


def found_insight(call: APICall, insight_id: str) -> Insight:
    insight = insight_store.get_insight(path_id(insight_id, "insight"), scope_id=call.scope_id)
    if insight is None:
        raise not_found("insight", insight_id)
    return insight


@router.route(
    "/insights",
    summary="Saved insights of the scope",
    permission="metrics.view",
    tag=TAG,
    query=ScopedModel,
    response=InsightList,
)
def insights_list(call: APICall) -> InsightList:
    found = insight_store.list_insights(scope_id=call.scope_id)
    return InsightList(insights=found)


class InsightBody(ScopedModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    kind: str = Field(description=f"The report: {KINDS}.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The report route's parameters (JSON values, lists for repeated ones); "
        "checked by that route: a mistake is a 400 naming params.<field>.",
    )


@router.route(
    "/insights",
    methods=("POST",),
    summary="Save a report query as an insight",
    permission="metrics.manage",
    tag=TAG,
    body=InsightBody,
    response=Insight,
    status=201,
)
def insights_create(call: APICall) -> Insight:
    body = call.body
    insight = insight_store.create_insight(
        body.kind,
        body.params,
        name=body.name,
        description=body.description,
        scope_id=call.scope_id,
        actor=call.actor,
    )
    return insight


@router.route(
    "/insights/<insight_id>",
    summary="One saved insight",
    permission="metrics.view",
    tag=TAG,
    query=ScopedModel,
    response=Insight,
)
def insights_get(call: APICall, insight_id: str) -> Insight:
    return found_insight(call, insight_id)


class InsightChanges(ScopedModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    kind: str | None = Field(None, description=f"The report: {KINDS}.")
    params: dict[str, Any] | None = None


@router.route(
    "/insights/<insight_id>",
    methods=("PATCH",),
    summary="Change an insight's name, description, kind or parameters",
    permission="metrics.manage",
    tag=TAG,
    body=InsightChanges,
    response=Insight,
)
def insights_update(call: APICall, insight_id: str) -> Insight:
    changes = {
        name: getattr(call.body, name)
        for name in call.body.model_fields_set - {"scope_id"}
        if getattr(call.body, name) is not None
    }
    number = path_id(insight_id, "insight")
    insight = insight_store.update_insight(
        number, scope_id=call.scope_id, actor=call.actor, **changes
    )
    if insight is None:
        raise not_found("insight", insight_id)
    return insight


class Deleted(BaseModel):
    id: int
    deleted: bool


@router.route(
    "/insights/<insight_id>",
    methods=("DELETE",),
    summary="Delete an insight (and its tiles on every dashboard)",
    permission="metrics.manage",
    tag=TAG,
    query=ScopedModel,
    response=Deleted,
)
def insights_delete(call: APICall, insight_id: str) -> Deleted:
    number = path_id(insight_id, "insight")
    if not insight_store.delete_insight(number, scope_id=call.scope_id, actor=call.actor):
        raise not_found("insight", insight_id)
    return Deleted(id=number, deleted=True)


class ResultQuery(ScopedModel):
    """Optional overrides, as a dashboard lays them over its tiles."""

    date_range: str | None = Field(None, max_length=32, description="A relative range.")
    date_from: DateTimeParam | None = None
    date_to: DateTimeParam | None = None
    filters: list[PropertyFilter] = Field(
        default_factory=list, description="Replace the insight's filters on the same keys."
    )

    _filters = field_validator("filters", mode="before")(json_filters)


@router.route(
    "/insights/<insight_id>/result",
    summary="Run a saved insight: its report route's answer for its saved parameters",
    permission="metrics.view",
    tag=TAG,
    query=ResultQuery,
    response=dict[str, Any],
)
def insights_result(call: APICall, insight_id: str) -> Any:
    q = call.query
    overrides = Overrides.checked(q.date_range, q.date_from, q.date_to, q.filters)
    return run_insight(found_insight(call, insight_id), overrides)


class TransferDocument(ScopedModel):
    version: int = 1
    insights: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    dashboards: list[dict[str, Any]] = Field(default_factory=list, max_length=200)
    annotations: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)


class Imported(BaseModel):
    insights: int
    dashboards: int
    annotations: int


@router.route(
    "/export/insights",
    summary="The scope's insights, dashboards and annotations as one JSON document",
    permission="metrics.view",
    tag="export",
    query=ScopedModel,
    response=TransferDocument,
)
def insights_export(call: APICall) -> dict[str, Any]:
    return export_insights(scope_id=call.scope_id)


@router.route(
    "/import/insights",
    methods=("POST",),
    summary="Create the insights, dashboards and annotations of an exported document here",
    permission="metrics.manage",
    tag="export",
    body=TransferDocument,
    response=Imported,
    status=201,
)
def insights_import(call: APICall) -> Imported:
    document = call.body.model_dump(exclude={"scope_id"})
    counts = import_insights(document, scope_id=call.scope_id, actor=call.actor)
    return Imported(**counts)
