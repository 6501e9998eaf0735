"""The Dashboards page: named grids of saved insights, each tile drawn from its report route.

Everyone with ``metrics.view`` sees them and may look at another range or filter for a while
(``?date_range=-7d`` and filter rows, like the report pages); managers add, remove, move and
resize tiles and save a range and filter as the dashboard's own (POST forms, CSRF-checked).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue

from ...api.insights import not_found, path_id
from ...insights import Dashboard, Insight, Overrides, Tile, boards
from ...insights import store as insight_store
from ...insights.run import insight_query, tile_answer
from ...queries.lifecycle import STATUSES
from ..access import actor, current_scope
from ..date_presets import PRESETS
from ..page import Chart, render_page
from ..tiles import TileView, tile_view
from . import Page
from .insights import page_args, report_link, scope_arg, tile_specs
from .report_forms import (
    BLANK_FILTER_ROWS,
    OPERATORS,
    FormError,
    filter_rows,
    filters_param,
)

WIDTHS = {3: "quarter", 4: "third", 6: "half", 8: "two thirds", 12: "full"}
HEIGHTS = (1, 2, 3, 4)


@dataclass
class ShownTile:
    tile: Tile
    view: TileView
    error: str | None
    link: str | None


def _dashboard(dashboard_id: str) -> Dashboard:
    dashboard = boards.get_dashboard(path_id(dashboard_id, "dashboard"), scope_id=current_scope())
    if dashboard is None:
        raise not_found("dashboard", dashboard_id)
    return dashboard


def _page_filters() -> list[dict[str, Any]] | None:
    """The filter rows of the query string as filter objects (None: none given)."""
    raw = filters_param(filter_rows())
    if raw is None:
        return None
    items: list[dict[str, Any]] = []
    for text in raw:
        parsed = json.loads(text)
        items.extend(parsed if isinstance(parsed, list) else [parsed])
    return items


def _overrides(dashboard: Dashboard) -> tuple[Overrides, bool]:
    """The dashboard's own range and filters, or the page's when its query string has any
    (then True: the page shows a temporary view a manager may save)."""
    date_range = request.args.get("date_range") or None
    filters = _page_filters()
    if date_range is None and filters is None:
        return Overrides.of(dashboard), False
    if date_range is None:
        return Overrides.checked(
            dashboard.date_range, dashboard.date_from, dashboard.date_to, filters
        ), True
    return Overrides.checked(date_range, filters=filters or dashboard.filters), True


def listing() -> Response | str:
    return render_page(
        "dashboards.html",
        title="Dashboards",
        dashboards=boards.list_dashboards(scope_id=current_scope()),
    )


def create() -> ResponseReturnValue:
    dashboard = boards.create_dashboard(
        request.form.get("name", ""),
        description=request.form.get("description", ""),
        scope_id=current_scope(),
        actor=actor(),
    )
    return redirect(_here(dashboard.id))


def _here(dashboard_id: int) -> str:
    return url_for(
        "umetrics_admin.dashboards_view", dashboard_id=dashboard_id, scope_id=scope_arg()
    )


#: The kinds whose tile bars open the persons behind them (``persons_behind.py``).
BAR_PERSONS = ("funnel", "lifecycle", "stickiness")


def _bar_links(insight: Insight, answer: dict[str, Any], overrides: Overrides) -> list[Any]:
    """Per bar of the tile (per status, then per period, for lifecycle): the persons behind it,
    with the tile's own query (the dashboard's range and filters laid over)."""
    query = insight_query(insight, overrides).model_dump(mode="json", exclude_defaults=True)
    args = {**page_args(query), "scope_id": scope_arg()}

    def url(**picked: Any) -> str:
        return url_for("umetrics_admin.persons_behind", report=insight.kind, **args, **picked)

    if insight.kind == "funnel":  # trends and time to convert have no persons per bar
        return [url(funnel_step=n) for n in range(1, len(answer.get("steps", [])) + 1)]
    if insight.kind == "lifecycle":
        return [[url(time=p["time"], status=s) for p in answer["periods"]] for s in STATUSES]
    return [url(periods=bar["periods"]) for bar in answer["bars"]]


def view(dashboard_id: str) -> Response | str:
    dashboard = _dashboard(dashboard_id)
    error: str | None = None
    try:
        overrides, temporary = _overrides(dashboard)
    except FormError as exc:
        error, overrides, temporary = str(exc), Overrides.of(dashboard), False
    shown: list[ShownTile] = []
    for tile in dashboard.tiles:
        answer = tile_answer(tile.insight, overrides)
        view_ = TileView()
        if answer["result"] is not None:
            view_ = tile_view(tile.insight, answer["result"], f"tile-{tile.id}")
            if view_.chart is not None and tile.insight.kind in BAR_PERSONS:
                view_.chart.links = _bar_links(tile.insight, answer["result"], overrides)
        problem = answer["error"]["message"] if answer["error"] else None
        shown.append(ShownTile(tile, view_, problem, report_link(tile.insight)))
    charts: list[Chart] = [s.view.chart for s in shown if s.view.chart is not None]
    in_use = {t.insight_id for t in dashboard.tiles}
    return render_page(
        "dashboard.html",
        title=dashboard.name,
        charts=charts,
        dashboard=dashboard,
        shown=shown,
        error=error,
        temporary=temporary,
        active_range=request.args.get("date_range") or dashboard.date_range,
        presets=PRESETS,
        widths=WIDTHS,
        heights=HEIGHTS,
        insights=insight_store.list_insights(scope_id=current_scope()),
        in_use=in_use,
        rows=filter_rows() or [_row(f) for f in dashboard.filters],
        blank_rows=BLANK_FILTER_ROWS,
        operators=OPERATORS,
        save_query=request.query_string.decode("utf-8", "replace"),
    )


def _row(item: dict[str, Any]) -> Any:
    """A saved filter as a filter row of the form."""
    from .report_forms import FilterRow

    value = item.get("value")
    text = (
        ", ".join(map(str, value))
        if isinstance(value, list)
        else ("" if value is None else str(value))
    )
    return FilterRow(item["key"], item.get("op", "eq"), text)


def _change_tiles(dashboard_id: str, change: Any) -> ResponseReturnValue:
    dashboard = _dashboard(dashboard_id)
    tiles = tile_specs(dashboard)
    change(tiles)
    boards.update_dashboard(dashboard.id, scope_id=current_scope(), actor=actor(), tiles=tiles)
    return redirect(_here(dashboard.id))


def _position(tiles: list[dict[str, int]]) -> int:
    try:
        position = int(request.form.get("position", ""))
    except ValueError:
        position = -1
    if not 0 <= position < len(tiles):
        raise not_found("tile", request.form.get("position", ""))
    return position


def _size(name: str, default: int) -> int:
    try:
        return int(request.form.get(name) or default)
    except ValueError:
        return -1  # refused, naming the field, by the store


def add_tile(dashboard_id: str) -> ResponseReturnValue:
    def change(tiles: list[dict[str, int]]) -> None:
        tiles.append(
            {
                "insight_id": path_id(request.form.get("insight_id", ""), "insight"),
                "width": _size("width", boards.DEFAULT_WIDTH),
                "height": _size("height", boards.DEFAULT_HEIGHT),
            }
        )

    return _change_tiles(dashboard_id, change)


def edit_tile(dashboard_id: str) -> ResponseReturnValue:
    """Move (``move=up|down``), resize (``width``/``height``) or remove (``remove``) a tile."""

    def change(tiles: list[dict[str, int]]) -> None:
        position = _position(tiles)
        move = request.form.get("move")
        if request.form.get("remove"):
            del tiles[position]
        elif move in ("up", "down"):
            other = position - 1 if move == "up" else position + 1
            if 0 <= other < len(tiles):
                tiles[position], tiles[other] = tiles[other], tiles[position]
        else:
            tiles[position]["width"] = _size("width", tiles[position]["width"])
            tiles[position]["height"] = _size("height", tiles[position]["height"])

    return _change_tiles(dashboard_id, change)


def save_settings(dashboard_id: str) -> ResponseReturnValue:
    """Keep the page's range and filter rows (from its query string) as the dashboard's own."""
    dashboard = _dashboard(dashboard_id)
    filters = _page_filters() or []
    boards.update_dashboard(
        dashboard.id,
        scope_id=current_scope(),
        actor=actor(),
        date_range=request.args.get("date_range") or None,
        filters=filters,
    )
    flash("Saved the range and filters as this dashboard's own.", "info")
    return redirect(_here(dashboard.id))


def delete(dashboard_id: str) -> ResponseReturnValue:
    dashboard = _dashboard(dashboard_id)
    boards.delete_dashboard(dashboard.id, scope_id=current_scope(), actor=actor())
    flash(f"Deleted dashboard \u201c{dashboard.name}\u201d (its insights stay).", "info")
    return redirect(url_for("umetrics_admin.dashboards", scope_id=scope_arg()))


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/dashboards", "dashboards", listing)
    bp.add_url_rule("/dashboards", "dashboards_create", create, methods=["POST"])
    bp.add_url_rule("/dashboards/<dashboard_id>", "dashboards_view", view)
    rules = {
        "tiles": add_tile,
        "tile": edit_tile,
        "settings": save_settings,
        "delete": delete,
    }
    for name, function in rules.items():
        bp.add_url_rule(
            f"/dashboards/<dashboard_id>/{name}",
            f"dashboards_{name}",
            function,
            methods=["POST"],
        )


PAGE = Page("umetrics_admin.dashboards", "Dashboards", register)
