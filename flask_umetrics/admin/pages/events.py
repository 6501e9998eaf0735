"""The Events page: a trends chart with math, breakdown and filters, top events and the top
values of an event's property, each from the REST route the API answers with."""

from __future__ import annotations

import json
from string import ascii_uppercase
from typing import Any

from flask import Blueprint, Response, request, url_for

from ...api.reports.basic import TopQuery, TrendsQuery, query_top, query_trends
from ...insights import list_dashboards
from ..access import current_scope
from ..chart_notes import mark_annotations
from ..page import Chart, Table, render_page, series_chart
from ..reports import saved_params
from . import Page
from .date_range import dashed_previous, totals_compared
from .persons_behind import persons_url
from .report_forms import (
    BLANK_FILTER_ROWS,
    OPERATORS,
    FormError,
    event_choices,
    filter_rows,
    filters_param,
    form_answer,
    series_name,
    short_time,
    try_report,
)

INTERVALS = ("hour", "day", "week", "month")
MATH_LABELS = {
    "total": "Total events",
    "unique_persons": "Unique persons",
    "unique_sessions": "Unique sessions",
    "per_person_avg": "Events per person",
    "first_time": "Persons doing it the first time",
    "dau": "Daily active persons",
    "wau": "Weekly active persons (7 days)",
    "mau": "Monthly active persons (30 days)",
    "sum": "Sum of property",
    "avg": "Average of property",
    "min": "Minimum of property",
    "max": "Maximum of property",
    "median": "Median of property",
    "p75": "75th percentile of property",
    "p90": "90th percentile of property",
    "p95": "95th percentile of property",
    "p99": "99th percentile of property",
}
MATHS = tuple(MATH_LABELS)
TOP_LIMIT = 10


def _trends_chart(answer: dict[str, Any]) -> tuple[Chart, Table]:
    """One line per breakdown value; the totals of additive maths in their own table."""
    interval = answer["interval"]
    results = answer["results"]
    labels = [short_time(point["time"], interval) for point in results[0]["series"]]
    taken: set[str] = set()
    series: dict[str, list[float | None]] = {}
    totals = []
    letters = series_labels()
    for result in results:
        label = letters.get(result.get("label") or "", result.get("label"))
        if answer["breakdown"] is None:
            name = series_name(label or MATH_LABELS.get(answer["math"], answer["math"]), taken)
        elif label:
            name = series_name(f"{label}: {result['breakdown_value'] or '(none)'}", taken)
        else:
            name = series_name(result["breakdown_value"], taken)
        series[name] = [point["value"] for point in result["series"]]
        totals.append([name, result["total"]])
    title = MATH_LABELS.get(answer["math"], answer["math"])
    if answer["math"] in ("series", "formula"):
        title = f"Formula {answer['formula']}" if answer.get("formula") else "Several series"
    if answer["property"]:
        title += f" ({answer['property']})"
    if answer["breakdown"]:
        title += f" by {answer['breakdown']}"
        if answer.get("breakdown_type") in ("person", "segment"):
            title += f" ({answer['breakdown_type']})"
    chart = series_chart("trends", title, labels, series)
    column = answer["breakdown"] or "series"
    return chart, Table("trend-totals", "Totals over the range", [column, "total"], totals)


def series_labels() -> dict[str, str]:
    """``A`` -> ``A: signed_up (Total events)`` for the page's ``series=`` JSON (the REST
    answer labels each series with its letter only)."""
    try:
        specs = json.loads(request.args.get("series") or "[]")
    except ValueError:
        return {}
    if not isinstance(specs, list):
        return {}
    labels = {}
    for letter, spec in zip(ascii_uppercase, specs, strict=False):
        if isinstance(spec, dict):
            math = MATH_LABELS.get(str(spec.get("math", "total")), str(spec.get("math")))
            labels[letter] = f"{letter}: {spec.get('event') or 'all events'} ({math})"
    return labels


def _point_links(answer: dict[str, Any], filters: list[str] | None) -> list[Any] | None:
    """Per series, per point: the persons behind it (its unique persons); none for several
    series or a formula (whose points are not one set of persons)."""
    if answer["math"] in ("series", "formula"):
        return None
    links = []
    for result in answer["results"]:
        value = result["breakdown_value"]
        picked = {"filters": filters, "breakdown_value": value}
        links.append(
            [persons_url("trends", {**picked, "time": p["time"]}) for p in result["series"]]
        )
    return links


def _top_chart(key: str, title: str, items: list[dict[str, Any]], column: str) -> Chart:
    return series_chart(
        key,
        title,
        [item["key"] for item in items],
        {"count": [item["count"] for item in items]},
        kind="hbar",
        label_column=column,
    )


#: What a link from a list of events to one event's trend keeps of the page it is on.
RANGE_ARGS = ("scope_id", "date_range", "date_from", "date_to", "compare")


def event_trend_links(names: list[str], keep: tuple[str, ...] | None = RANGE_ARGS) -> list[str]:
    """Per event name, the Events page showing its trend over this page's range (``keep=None``:
    with every parameter of this page, its filters too): a top event's bar opens it."""
    args: dict[str, Any] = {
        key: request.args.getlist(key)
        for key in request.args
        if (keep is None or key in keep) and key != "event"
    }
    return [url_for("umetrics_admin.events", **args, event=name) for name in names]


def view() -> Response | str:
    event = request.args.get("event") or None
    breakdown = request.args.get("breakdown") or None
    by_event = request.args.get("breakdown_type", "event") == "event"
    values_of = request.args.get("values_of") or (breakdown if by_event else None)
    rows = filter_rows()
    charts: list[Chart] = []
    tables: list[Table] = []
    trends = totals = top_events = top_values = compare = None
    saved: dict[str, Any] | None = None
    error: str | None = None
    try:
        filters = filters_param(rows)
    except FormError as exc:
        error, filters = str(exc), None
    if error is None:
        answer, error = try_report(query_trends, TrendsQuery, {"filters": filters})
        if answer is not None:
            saved = saved_params(TrendsQuery, {"filters": filters})
            trends, totals = _trends_chart(answer)
            if event is not None and answer["math"] not in ("series", "formula"):
                trends.title = f"{event}: {trends.title}"  # what is counted, not only how
            trends.links = _point_links(answer, filters)
            starts = [point["time"] for point in answer["results"][0]["series"]]
            mark_annotations(trends, starts, answer["interval"])
            charts.append(trends)
            tables.append(totals)
            if answer.get("previous"):  # compare=previous: the route's own previous range
                before, before_totals = _trends_chart(answer["previous"])
                dashed_previous(trends, before)
                compare = totals_compared("trends", totals, before_totals)
                tables.append(compare)
    if error is None:
        answer, error = try_report(
            query_top,
            TopQuery,
            {"event": None, "property": None, "filters": filters, "limit": TOP_LIMIT},
        )
        if answer is not None:
            top_events = _top_chart("top-events", "Top events", answer["items"], "event")
            top_events.links = event_trend_links(top_events.labels, keep=None)
            charts.append(top_events)
    if error is None and event is not None and values_of is not None:
        answer, error = try_report(
            query_top, TopQuery, {"property": values_of, "filters": filters, "limit": TOP_LIMIT}
        )
        if answer is not None:
            title = f"Top values of {values_of} on {event}"
            top_values = _top_chart("top-values", title, answer["items"], values_of)
            charts.append(top_values)
    body = render_page(
        "events.html",
        title="Events",
        charts=charts,
        tables=tables,
        error=error,
        events=event_choices([event]),
        event=event,
        breakdown=breakdown,
        values_of=values_of,
        intervals=INTERVALS,
        maths=MATHS,
        math_labels=MATH_LABELS,
        operators=OPERATORS,
        rows=rows,
        blank_rows=BLANK_FILTER_ROWS,
        trends=trends,
        totals=totals,
        top_events=top_events,
        top_values=top_values,
        compare=compare,
        insight_params=saved,
        dashboards=list_dashboards(scope_id=current_scope()) if saved else [],
    )
    return form_answer(body, error)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/events", "events", view)


PAGE = Page("umetrics_admin.events", "Events", register)
