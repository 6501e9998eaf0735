"""The Funnels page: a step builder, counts per step as bars, conversion, drop-off and median
time per step, optionally split by a property of the first step; or, switched by ``mode``, the
conversion rate per entry period or the time to convert between two steps
(``/api/query/funnel``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from ...api.reports.funnel import FunnelQuery, query_funnel
from ...insights import list_dashboards
from ...queries.funnel import ATTRIBUTIONS, DEFAULT_WINDOW_SECONDS, MAX_STEPS, MIN_STEPS, ORDERS
from ...queries.funnel_modes import TREND_INTERVALS
from ..access import current_scope
from ..chart_notes import mark_annotations
from ..page import Chart, Table, render_page, series_chart
from ..reports import saved_params
from . import Page
from .compare_blocks import funnel_measures, funnel_time_measures, funnel_trends_measures
from .date_range import compare_table, dashed_previous, previous_report
from .funnel_correlation import correlation
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

#: The page's views (``mode``) and their names in the form.
MODES: dict[str, str] = {
    "steps": "Steps",
    "trends": "Conversion over time",
    "time_to_convert": "Time to convert",
}
#: The window's units in the form, in seconds.
UNITS: dict[str, int] = {"minutes": 60, "hours": 3600, "days": 86400}
#: Funnels offered as one-click suggestions when the scope has all their events.
SUGGESTED: list[list[str]] = [["$pageview", "signed_up", "note_created", "plan_upgraded"]]
#: Without a matching suggestion, the first this many top events are offered instead.
FALLBACK_STEPS = 3
STEP_COLUMNS = [
    "step",
    "count",
    "conversion_from_start",
    "conversion_from_previous",
    "drop_off",
    "drop_off_share",
    "median_seconds_from_previous",
]
FORMATS = {
    "conversion_from_start": "percent",
    "conversion_from_previous": "percent",
    "drop_off_share": "percent",
    "median_seconds_from_previous": "duration",
    "conversion_rate": "percent",
    "conversion_rate (previous)": "percent",
}


def _steps() -> list[str]:
    return [step for step in request.args.getlist("step") if step.strip()]


def _window() -> int | None:
    """The window in seconds from ``window_value`` and ``window_unit``; None: the route's
    ``window`` parameter (seconds) or its default."""
    text = request.args.get("window_value", "").strip()
    if not text:
        return None
    unit = request.args.get("window_unit", "days")
    if unit not in UNITS:
        raise FormError(f"window_unit: must be one of {', '.join(UNITS)}")
    try:
        value = float(text)
    except ValueError:
        raise FormError("window: must be a number") from None
    if value <= 0:
        raise FormError("window: must be greater than 0")
    return round(value * UNITS[unit])


def _window_fields(seconds: int) -> tuple[str, str]:
    """The form's value and unit showing ``seconds`` (the largest unit dividing it)."""
    for unit, size in sorted(UNITS.items(), key=lambda item: -item[1]):
        if seconds % size == 0:
            return str(seconds // size), unit
    return f"{seconds / 60:g}", "minutes"


def _window_text(seconds: int) -> str:
    """``14 days``, ``1 hour``, ``90 minutes``."""
    value, unit = _window_fields(seconds)
    return f"{value} {unit[:-1] if value == '1' else unit}"


def _label(index: int, event: str) -> str:
    return f"{index + 1}. {event}"


def _step_rows(steps: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for index, step in enumerate(steps):
        previous = steps[index - 1]["count"] if index else step["count"]
        drop = previous - step["count"]
        rows.append(
            [
                _label(index, step["event"]),
                step["count"],
                step["conversion_from_start"],
                step["conversion_from_previous"],
                drop,
                drop / previous if previous else 0.0,
                step["median_seconds_from_previous"],
            ]
        )
    return rows


def _rate_chart(answer: dict[str, Any]) -> Chart:
    """Conversion rate per entry period (its table: time and rate)."""
    points = answer["points"]
    return series_chart(
        "funnel-trends",
        f"Conversion by entry {answer['interval']}",
        [short_time(p["start"], answer["interval"]) for p in points],
        {"conversion_rate": [p["conversion_rate"] for p in points]},
        percent=True,
    )


def _trends_chart(answer: dict[str, Any]) -> Chart:
    """Conversion rate per entry period, with the persons entering and converting in the table."""
    points = answer["points"]
    chart = _rate_chart(answer)
    chart.table = Table(
        "funnel-trends",
        chart.title,
        ["time", "entered", "converted", "conversion_rate"],
        [
            [
                short_time(p["start"], answer["interval"]),
                p["entered"],
                p["converted"],
                p["conversion_rate"],
            ]
            for p in points
        ],
    )
    return mark_annotations(chart, [p["start"] for p in points], answer["interval"])


def _time_chart(answer: dict[str, Any]) -> Chart:
    """Persons per bin of the time between the two steps."""
    bins = answer["histogram"]
    return series_chart(
        "funnel-time",
        f"Time from step {answer['from_step'] + 1} to step {answer['to_step'] + 1}",
        [f"{b['start_seconds']} to {b['end_seconds']} s" for b in bins],
        {"persons": [b["count"] for b in bins]},
        kind="bar",
        label_column="seconds",
    )


#: The funnel's breakdown parameters, left out of the persons behind the whole funnel's bars.
WHOLE = {
    "breakdown": None,
    "breakdown_limit": None,
    "breakdown_attribution": None,
    "breakdown_attribution_step": None,
}


def _charts(
    answer: dict[str, Any], overrides: dict[str, Any] | None = None
) -> tuple[Chart, list[Chart]]:
    """The charts of any answer of the route: steps, trends or time to convert; with the
    page's ``overrides``, the breakdown bars open the persons of their group and step."""
    if answer.get("mode") == "trends":
        return _trends_chart(answer), []
    if answer.get("mode") == "time_to_convert":
        return _time_chart(answer), []
    labels = [_label(i, step["event"]) for i, step in enumerate(answer["steps"])]
    chart = Chart(
        "funnel",
        "Persons per step",
        "bar",
        labels,
        [{"label": "persons", "data": [step["count"] for step in answer["steps"]]}],
        Table("funnel", "Funnel steps", STEP_COLUMNS, _step_rows(answer["steps"])),
    )
    extra = []
    if answer.get("breakdowns"):
        taken: set[str] = set()
        series: dict[str, list[float | None]] = {}
        for group in answer["breakdowns"]:
            name = series_name(group["value"], taken)
            series[name] = [step["count"] for step in group["steps"]]
        by_group = series_chart(
            "funnel-breakdown",
            f"Persons per step by {answer['breakdown']}",
            labels,
            series,
            kind="bar",
            label_column="step",
        )
        if overrides is not None:
            by_group.links = [
                [
                    persons_url(
                        "funnel",
                        {**overrides, "breakdown_value": group["value"], "funnel_step": step},
                    )
                    for step in range(1, len(group["steps"]) + 1)
                ]
                for group in answer["breakdowns"]
            ]
        extra.append(by_group)
        conversion: dict[str, list[float | None]] = {
            name: [step["conversion_from_start"] for step in group["steps"]]
            for name, group in zip(series, answer["breakdowns"], strict=True)
        }
        converted = series_chart(
            "funnel-breakdown-conversion",
            f"Conversion from start by {answer['breakdown']}",
            labels,
            conversion,
            kind="bar",
            label_column="step",
            percent=True,
        )
        converted.links = by_group.links  # a group's rate at a step: the same persons
        extra.append(converted)
    return chart, extra


def _persons_links(n: int, overrides: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Per step: the persons who reached it, and those who dropped off before it (of the
    whole funnel: without its breakdown)."""
    whole = {**overrides, **WHOLE}
    return [
        (
            persons_url("funnel", {**whole, "funnel_step": step}),
            persons_url("funnel", {**whole, "funnel_step": step, "dropoff": "true"})
            if step > 1
            else None,
        )
        for step in range(1, n + 1)
    ]


def _compared(answer: dict[str, Any], previous: dict[str, Any], chart: Chart) -> Table:
    """The previous period of any view: dashed into ``chart`` where it has a line or bars to
    compare, and its headline numbers next to this period's."""
    if answer.get("mode") == "time_to_convert":  # bins differ between ranges: numbers only
        return compare_table("funnel", funnel_time_measures(answer, previous))
    if answer.get("mode") == "trends":
        dashed_previous(chart, _rate_chart(previous))
        return compare_table("funnel", funnel_trends_measures(answer, previous))
    dashed_previous(chart, _charts(previous)[0])
    return compare_table("funnel", funnel_measures(answer, previous))


def _suggestions(events: list[str]) -> list[list[str]]:
    known = set(events)
    fitting = [steps for steps in SUGGESTED if known.issuperset(steps)]
    if not fitting and len(events) >= MIN_STEPS:
        fitting = [events[:FALLBACK_STEPS]]
    return fitting


def view() -> Response | str:
    steps = _steps()
    rows = filter_rows()
    error: str | None = None
    answer: dict[str, Any] | None = None
    chart: Chart | None = None
    extra: list[Chart] = []
    saved: dict[str, Any] | None = None
    links: list[tuple[str, str | None]] = []
    previous: dict[str, Any] | None = None
    compare = None
    predictors = None
    try:
        window = _window()
        filters = filters_param(rows)
    except FormError as exc:
        error, window, filters = str(exc), None, None
    if error is None and steps:
        overrides: dict[str, Any] = {"filters": filters, "step": steps}
        if window is not None:
            overrides["window"] = window
        answer, error = try_report(query_funnel, FunnelQuery, overrides)
        if answer is not None:
            chart, extra = _charts(answer, overrides)
            saved = saved_params(FunnelQuery, overrides)
            if "steps" in answer:
                links = _persons_links(len(answer["steps"]), overrides)
                chart.links = [reached for reached, _ in links]
                predictors = correlation(overrides)
            previous = previous_report(query_funnel, FunnelQuery, overrides)
            if previous is not None:
                compare = _compared(answer, previous, chart)
    shown_window = window or _int(request.args.get("window")) or DEFAULT_WINDOW_SECONDS
    window_value, window_unit = _window_fields(shown_window)
    events = event_choices(list(steps))
    body = render_page(
        "funnels.html",
        title="Funnels",
        charts=[chart, *extra] if chart else [],
        tables=[t for t in (compare, predictors[0] if predictors else None) if t],
        error=error,
        answer=answer,
        previous=previous,
        compare=compare,
        funnel_chart=chart,
        persons_links=links,
        predictors=predictors,
        extra=[
            (c, dict.fromkeys(c.table.columns[1:], "percent") if c.percent else {}) for c in extra
        ],
        formats=FORMATS,
        window_text=_window_text(answer["window_seconds"]) if answer else None,
        steps=steps,
        blank_steps=max(MIN_STEPS - len(steps), 1),
        max_steps=MAX_STEPS,
        events=events,
        suggestions=_suggestions(events),
        window_value=request.args.get("window_value") or window_value,
        window_unit=request.args.get("window_unit") or window_unit,
        units=list(UNITS),
        orders=ORDERS,
        modes=MODES,
        mode=answer.get("mode", "steps") if answer else request.args.get("mode", "steps"),
        intervals=TREND_INTERVALS,
        attributions=ATTRIBUTIONS,
        operators=OPERATORS,
        rows=rows,
        blank_rows=BLANK_FILTER_ROWS,
        insight_params=saved,
        dashboards=list_dashboards(scope_id=current_scope()) if saved else [],
    )
    return form_answer(body, error)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/funnels", "funnels", view)


PAGE = Page("umetrics_admin.funnels", "Funnels", register)
