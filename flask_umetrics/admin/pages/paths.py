"""Paths: from a start event (or each person's first event), the most frequent next events.

One horizontal bar chart per step (its transitions by persons) with its table, plus one table
of every step for a single CSV. Numbers are the ``/api/query/paths`` route's answer.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue

from ...api.reports.basic import TopQuery, query_top
from ...api.reports.paths import PathsQuery, query_paths
from ...errors import APIError, ValidationError
from ..page import Chart, Table, render_page, series_chart
from ..reports import run_report
from . import Page
from .compare_blocks import paths_measures
from .date_range import compare_table, previous_report

#: Event names offered in the start-event field.
SUGGESTED_EVENTS = 50


def transition_label(transition: dict[str, Any]) -> str:
    return f"{transition['from']} \u2192 {transition['to']}"


def step_charts(result: dict[str, Any]) -> list[Chart]:
    charts = []
    for step in result["steps"]:
        transitions = step["transitions"]
        chart = series_chart(
            f"paths-step-{step['step']}",
            f"Step {step['step']}",
            [transition_label(t) for t in transitions],
            {"persons": [t["persons"] for t in transitions]},
            kind="hbar",
            label_column="transition",
        )
        chart.table = Table(
            chart.key,
            chart.title,
            ["from", "to", "persons"],
            [[t["from"], t["to"], t["persons"]] for t in transitions],
        )
        charts.append(chart)
    return charts


def all_steps_table(result: dict[str, Any]) -> Table:
    return Table(
        "paths",
        "All steps",
        ["step", "from", "to", "persons"],
        [
            [step["step"], t["from"], t["to"], t["persons"]]
            for step in result["steps"]
            for t in step["transitions"]
        ],
    )


def paths() -> ResponseReturnValue:
    error: str | None = None
    status = 200
    try:
        result = run_report(query_paths, PathsQuery)
    except (APIError, ValidationError) as exc:
        if isinstance(exc, APIError) and exc.status != 400:
            raise
        error, status = exc.message if isinstance(exc, APIError) else str(exc), 400
        result = {"start_event": None, "steps": [], "sampled": None}
    try:
        suggestions = [
            item["key"]
            for item in run_report(
                query_top, TopQuery, {"limit": SUGGESTED_EVENTS, "event": None, "property": None}
            )["items"]
        ]
    except (APIError, ValidationError):
        suggestions = []
    charts = step_charts(result)
    everything = all_steps_table(result)
    previous = None if error else previous_report(query_paths, PathsQuery)
    compare = compare_table("paths", paths_measures(result, previous)) if previous else None
    page = render_page(
        "paths.html",
        title="Paths",
        charts=charts,
        tables=[everything, *([compare] if compare else [])],
        compare=compare,
        result=result,
        everything=everything,
        error=error,
        suggestions=suggestions,
        defaults=PathsQuery.model_fields,
    )
    return page, status


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/paths", "paths", paths)


PAGE = Page("umetrics_admin.paths", "Paths", register)
