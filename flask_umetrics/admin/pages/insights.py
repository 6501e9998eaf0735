"""The Insights page: saved report queries, each drawn as it would be on a dashboard, and the
"Save as insight" form of the report pages (``POST /insights``)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue

from ...api.insights import not_found, path_id
from ...errors import ValidationError
from ...insights import INSIGHT_KINDS, Insight, Overrides, boards, run_insight
from ...insights import store as insight_store
from ...queries.relative_dates import local_today, relative_range
from ..access import actor, current_scope
from ..formatting import time_zone
from ..page import Chart, render_page
from ..tiles import TileView, tile_view
from . import Page


def scope_arg() -> str | None:
    """The page's ``scope_id`` as given (None: the default scope), for redirects."""
    return request.args.get("scope_id") or request.form.get("scope_id") or None


def page_args(params: dict[str, Any]) -> dict[str, Any]:
    """An insight's stored parameters as the query string of a dashboard page: lists of
    objects as JSON, lists of names repeated (as the routes take them, e.g. correlation's
    ``exclude_events``), a relative range as today's dates."""
    args: dict[str, Any] = {}
    for name, value in params.items():
        if name in ("filters", "exclude") and value:
            args[name] = json.dumps(value)
        elif name == "step":
            args["step"] = [s["event"] if not s.get("filters") else json.dumps(s) for s in value]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            args[name] = value
        elif isinstance(value, (str, int, float, bool)) and name != "scope_id":
            args[name] = str(value).lower() if isinstance(value, bool) else value
    if "date_range" in args:  # the pages take dates: today's dates of the relative range
        first, end = relative_range(args.pop("date_range"), local_today(time_zone()))
        args.update(date_from=first.isoformat(), date_to=end.isoformat())
    return args


def report_link(insight: Insight) -> str | None:
    """The report page showing this insight's query, where one exists."""
    pages = {
        "trends": "events",
        "top": "events",
        "funnel": "funnels",
        "funnel_correlation": "funnels",  # the table under the funnel's steps
        "retention": "retention",
        "paths": "paths",
        "lifecycle": "lifecycle",
        "stickiness": "stickiness",
        "attribution": "attribution",
    }
    page = pages.get(insight.kind)
    if page is None:
        return None
    args = page_args(insight.params)
    if insight.kind == "top" and "property" in args:  # the Events page's "Top values of"
        args["values_of"] = args.pop("property")
    return url_for(f"umetrics_admin.{page}", scope_id=scope_arg(), **args)


def _view(
    insight: Insight, key: str, overrides: Overrides | None = None
) -> tuple[TileView, str | None]:
    try:
        return tile_view(insight, run_insight(insight, overrides), key), None
    except ValidationError as exc:
        return TileView(), str(exc)


def view() -> Response | str:
    found = insight_store.list_insights(scope_id=current_scope())
    shown = [(insight, *_view(insight, f"insight-{insight.id}")) for insight in found]
    charts: list[Chart] = [v.chart for _, v, _ in shown if v.chart is not None]
    return render_page(
        "insights.html",
        title="Insights",
        charts=charts,
        shown=shown,
        kinds=INSIGHT_KINDS,
        dashboards=boards.list_dashboards(scope_id=current_scope()),
        report_link=report_link,
    )


def save() -> ResponseReturnValue:
    """Save the report a page shows (its kind and route parameters) as an insight, and add it
    to a dashboard when one is chosen."""
    form = request.form
    try:
        params = json.loads(form.get("params") or "{}")
    except ValueError:
        raise ValidationError("params", "must be a JSON object") from None
    insight = insight_store.create_insight(
        form.get("kind", ""),
        params,
        name=form.get("name", ""),
        description=form.get("description", ""),
        scope_id=current_scope(),
        actor=actor(),
    )
    flash(f"Saved insight \u201c{insight.name}\u201d.", "info")
    target = form.get("dashboard_id") or ""
    if target:
        number = path_id(target, "dashboard")
        dashboard = boards.get_dashboard(number, scope_id=current_scope())
        if dashboard is None:
            raise not_found("dashboard", target)
        tiles = [*tile_specs(dashboard), {"insight_id": insight.id}]
        boards.update_dashboard(number, scope_id=current_scope(), actor=actor(), tiles=tiles)
        return redirect(
            url_for("umetrics_admin.dashboards_view", dashboard_id=number, scope_id=scope_arg())
        )
    return redirect(url_for("umetrics_admin.insights", scope_id=scope_arg()))


def tile_specs(dashboard: Any) -> list[dict[str, int]]:
    """A dashboard's tiles as ``update_dashboard`` takes them."""
    return [
        {"insight_id": t.insight_id, "width": t.width, "height": t.height} for t in dashboard.tiles
    ]


def delete(insight_id: str) -> ResponseReturnValue:
    number = path_id(insight_id, "insight")
    if not insight_store.delete_insight(number, scope_id=current_scope(), actor=actor()):
        raise not_found("insight", insight_id)
    flash("Deleted the insight (and its tiles).", "info")
    return redirect(url_for("umetrics_admin.insights", scope_id=scope_arg()))


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/insights", "insights", view)
    bp.add_url_rule("/insights", "insights_save", save, methods=["POST"])
    bp.add_url_rule("/insights/<insight_id>/delete", "insights_delete", delete, methods=["POST"])


PAGE = Page("umetrics_admin.insights", "Insights", register)
