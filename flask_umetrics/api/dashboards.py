"""REST routes of dashboards: list and read, optionally with every tile's answer (view);
create, change (tiles: add, remove, reorder, resize), delete (manage)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import BaseModel, Field

from ..insights import Dashboard, boards, dashboard_results
from ..queries.filters import PropertyFilter
from ..queries.relative_dates import check_token
from .insights import Deleted, not_found, path_id
from .models import ScopedModel
from .params import DateTimeParam
from .router import APICall
from .routes import router

TAG = "dashboards"


class DashboardList(BaseModel):
    dashboards: list[Dashboard]


def with_results(dashboard: Dashboard) -> Dashboard:
    """The dashboard with every tile's answer (or error) under its overrides."""
    answers = dashboard_results(dashboard)
    tiles = [replace(tile, **answer) for tile, answer in zip(dashboard.tiles, answers, strict=True)]
    return replace(dashboard, tiles=tiles)


@router.route(
    "/dashboards",
    summary="Dashboards of the scope (tiles without results)",
    permission="metrics.view",
    tag=TAG,
    query=ScopedModel,
    response=DashboardList,
)
def dashboards_list(call: APICall) -> DashboardList:
    found = boards.list_dashboards(scope_id=call.scope_id)
    return DashboardList(dashboards=found)


class TileIn(BaseModel):
    insight_id: int = Field(ge=1)
    width: int = Field(boards.DEFAULT_WIDTH, ge=1, le=boards.GRID_COLUMNS)
    height: int = Field(boards.DEFAULT_HEIGHT, ge=1, le=boards.MAX_HEIGHT)


class DashboardBody(ScopedModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    date_range: str | None = Field(
        None, max_length=32, description="Relative range overriding every tile's (-7d, ...)."
    )
    date_from: DateTimeParam | None = None
    date_to: DateTimeParam | None = None
    filters: list[PropertyFilter] = Field(
        default_factory=list, description="Override the tiles' filters on the same keys."
    )
    tiles: list[TileIn] = Field(default_factory=list, max_length=boards.MAX_TILES)


def _values(body: BaseModel, names: set[str]) -> dict[str, Any]:
    values = {name: getattr(body, name) for name in names - {"scope_id"}}
    if "filters" in values:
        values["filters"] = [f.model_dump(mode="json") for f in values["filters"]]
    if "tiles" in values:
        values["tiles"] = [t.model_dump() for t in values["tiles"]]
    return values


@router.route(
    "/dashboards",
    methods=("POST",),
    summary="Create a dashboard",
    permission="metrics.manage",
    tag=TAG,
    body=DashboardBody,
    response=Dashboard,
    status=201,
)
def dashboards_create(call: APICall) -> Dashboard:
    values = _values(call.body, set(DashboardBody.model_fields))
    dashboard = boards.create_dashboard(scope_id=call.scope_id, actor=call.actor, **values)
    return dashboard


class DashboardQuery(ScopedModel):
    results: bool = Field(False, description="Run every tile and include its answer.")
    date_range: str | None = Field(
        None,
        max_length=32,
        description="With results: this relative range instead of the saved one.",
    )


@router.route(
    "/dashboards/<dashboard_id>",
    summary="One dashboard; with results=true every tile's answer under its overrides",
    permission="metrics.view",
    tag=TAG,
    query=DashboardQuery,
    response=Dashboard,
)
def dashboards_get(call: APICall, dashboard_id: str) -> Dashboard:
    dashboard = boards.get_dashboard(path_id(dashboard_id, "dashboard"), scope_id=call.scope_id)
    if dashboard is None:
        raise not_found("dashboard", dashboard_id)
    if call.query.date_range is not None:
        check_token(call.query.date_range)
        dashboard = replace(
            dashboard, date_range=call.query.date_range, date_from=None, date_to=None
        )
    return with_results(dashboard) if call.query.results else dashboard


class DashboardChanges(ScopedModel):
    """Only the fields given change; the range fields change together (the ones left out
    are cleared); ``tiles`` is the whole new list, in order."""

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    date_range: str | None = Field(None, max_length=32)
    date_from: DateTimeParam | None = None
    date_to: DateTimeParam | None = None
    filters: list[PropertyFilter] | None = None
    tiles: list[TileIn] | None = Field(None, max_length=boards.MAX_TILES)


@router.route(
    "/dashboards/<dashboard_id>",
    methods=("PATCH",),
    summary="Change a dashboard: name, range and filters, tiles (add, remove, reorder, resize)",
    permission="metrics.manage",
    tag=TAG,
    body=DashboardChanges,
    response=Dashboard,
)
def dashboards_update(call: APICall, dashboard_id: str) -> Dashboard:
    given = set(call.body.model_fields_set)
    if given & {"date_range", "date_from", "date_to"}:
        given |= {"date_range", "date_from", "date_to"}
    values = _values(call.body, given)
    for name in ("name", "description", "filters", "tiles"):
        if name in values and values[name] is None:
            values.pop(name)
    dashboard = boards.update_dashboard(
        path_id(dashboard_id, "dashboard"), scope_id=call.scope_id, actor=call.actor, **values
    )
    if dashboard is None:
        raise not_found("dashboard", dashboard_id)
    return dashboard


@router.route(
    "/dashboards/<dashboard_id>",
    methods=("DELETE",),
    summary="Delete a dashboard (its insights stay)",
    permission="metrics.manage",
    tag=TAG,
    query=ScopedModel,
    response=Deleted,
)
def dashboards_delete(call: APICall, dashboard_id: str) -> Deleted:
    number = path_id(dashboard_id, "dashboard")
    if not boards.delete_dashboard(number, scope_id=call.scope_id, actor=call.actor):
        raise not_found("dashboard", dashboard_id)
    return Deleted(id=number, deleted=True)
