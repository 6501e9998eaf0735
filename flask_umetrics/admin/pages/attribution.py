"""Attribution: conversions of one event credited to channels, sources or campaigns.

The form carries every parameter of ``/api/query/attribution``; the bar chart and its table
are that route's answer. Without a conversion event the page shows the form only.
"""

from __future__ import annotations

from typing import Any, get_args

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from ...api.reports.attribution import AttributionQuery, query_attribution
from ...api.reports.basic import TopQuery, query_top
from ...errors import APIError, ValidationError
from ..formatting import column_label
from ..page import Chart, Table, render_page
from ..reports import run_report
from . import Page
from .compare_blocks import attribution_measures
from .date_range import compare_table, previous_report

SUGGESTED_EVENTS = 50


def _choices(field: str) -> list[str]:
    return list(get_args(AttributionQuery.model_fields[field].annotation))


def attribution_chart(result: dict[str, Any]) -> Chart:
    rows = result["rows"]
    group = result["group_by"]
    table = Table(
        "attribution",
        f"Conversions by {group}",
        [group, "conversions", "value"],
        [[row["key"], row["conversions"], row["value"]] for row in rows],
    )
    datasets: list[dict[str, Any]] = [
        {"label": "Conversions", "data": [row["conversions"] for row in rows]}
    ]
    labels = [column_label(row["key"]) if group == "channel" else row["key"] for row in rows]
    return Chart("attribution", table.title, "bar", labels, datasets, table)


#: How many of the top events the empty page offers as one-click conversion events.
TRIED_EVENTS = 5


def suggested_conversions(events: list[str]) -> list[tuple[str, str]]:
    """The most frequent events as (name, this page crediting it over the same range), without
    the automatic ones (``$pageview``, ``$autocapture``): visits, not conversions."""
    args: dict[str, Any] = request.args.to_dict(flat=False)
    return [
        (name, url_for("umetrics_admin.attribution", **{**args, "conversion_event": name}))
        for name in [name for name in events if not name.startswith("$")][:TRIED_EVENTS]
    ]


def attribution() -> ResponseReturnValue:
    error: str | None = None
    status = 200
    result: dict[str, Any] | None = None
    if request.args.get("conversion_event"):
        try:
            result = run_report(query_attribution, AttributionQuery)
        except (APIError, ValidationError) as exc:
            if isinstance(exc, APIError) and exc.status != 400:
                raise
            error, status = exc.message if isinstance(exc, APIError) else str(exc), 400
    try:
        top = run_report(query_top, TopQuery, {"limit": SUGGESTED_EVENTS, "event": None})
        suggestions = [item["key"] for item in top["items"]]
    except (APIError, ValidationError):
        suggestions = []
    chart = attribution_chart(result) if result is not None else None
    previous = previous_report(query_attribution, AttributionQuery) if result else None
    compare = (
        compare_table("attribution", attribution_measures(result, previous))
        if result and previous
        else None
    )
    totals = (
        Table(
            "attribution-totals",
            "Totals",
            ["metric", "value"],
            [
                ["conversions", result["conversions"]],
                ["credited_value", sum(row["value"] for row in result["rows"])],
            ],
        )
        if result is not None
        else None
    )
    page = render_page(
        "attribution.html",
        title="Attribution",
        charts=[chart] if chart else [],
        tables=[t for t in (totals, compare) if t],
        compare=compare,
        result=result,
        chart=chart,
        totals=totals,
        error=error,
        suggestions=suggestions,
        tries=suggested_conversions(suggestions),
        models=_choices("model"),
        groups=_choices("group_by"),
        defaults=AttributionQuery.model_fields,
    )
    return page, status


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/attribution", "attribution", attribution)


PAGE = Page("umetrics_admin.attribution", "Attribution", register)
