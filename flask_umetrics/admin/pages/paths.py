"""Paths: from a start event (or to an end event), the most frequent steps, as a flow diagram.

A Sankey diagram (the vendored chartjs-chart-sankey, drawn by ``static/pages/paths.js`` from a
JSON block: no inline script) with one column per position, then one table of every step for a
single CSV. Exclusions are one per line and cleaning rules ``pattern => replacement`` one per
line; both become the ``/api/query/paths`` parameters, whose answer the numbers are.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, request
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


#: Separates a cleaning rule's pattern from its replacement in the form.
RULE_ARROW = "=>"


def flows(result: dict[str, Any]) -> dict[str, Any]:
    """The Sankey's data: ``flows`` between nodes keyed ``column|name`` (a name may appear in
    several columns), their ``labels`` and ``columns``. With an end event, steps count back,
    so step ``k`` goes from column ``steps - k`` to ``steps - k + 1`` (then shifted so the
    first column used is 0)."""
    steps = len(result["steps"])
    back = result.get("end_event") is not None
    items: list[dict[str, Any]] = []
    labels: dict[str, str] = {}
    columns: dict[str, int] = {}
    for step in result["steps"]:
        k = step["step"]
        first = steps - k if back else k - 1
        for t in step["transitions"]:
            keys = []
            for column, name in ((first, t["from"]), (first + 1, t["to"])):
                key = f"{column}|{name}"
                labels[key], columns[key] = name, column
                keys.append(key)
            items.append({"from": keys[0], "to": keys[1], "flow": t["persons"]})
    # Counted back, the left columns stay empty when no path is that long: start at the first.
    shift = min(columns.values(), default=0)
    return {
        "flows": items,
        "labels": labels,
        "columns": {key: column - shift for key, column in columns.items()},
    }


def form_options() -> dict[str, Any]:
    """The form's exclusions (one per line) and cleaning rules (``pattern => replacement``
    per line) as the route's ``exclude`` and ``cleaning`` parameters."""
    exclude = [x.strip() for x in request.args.get("exclude_lines", "").splitlines() if x.strip()]
    rules = []
    for line in request.args.get("cleaning_lines", "").splitlines():
        if line.strip():
            pattern, _, replacement = line.partition(RULE_ARROW)
            rules.append({"pattern": pattern.strip(), "replacement": replacement.strip()})
    return {"exclude": exclude or None, "cleaning": json.dumps(rules) if rules else None}


def paths() -> ResponseReturnValue:
    error: str | None = None
    status = 200
    options = form_options()
    try:
        result = run_report(query_paths, PathsQuery, options)
    except (APIError, ValidationError) as exc:
        if isinstance(exc, APIError) and exc.status != 400:
            raise
        error, status = exc.message if isinstance(exc, APIError) else str(exc), 400
        result = {"start_event": None, "end_event": None, "steps": [], "sampled": None}
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
    previous = None if error else previous_report(query_paths, PathsQuery, options)
    compare = compare_table("paths", paths_measures(result, previous)) if previous else None
    page = render_page(
        "paths.html",
        title="Paths",
        charts=charts,
        tables=[everything, *([compare] if compare else [])],
        compare=compare,
        result=result,
        everything=everything,
        sankey=flows(result),
        error=error,
        suggestions=suggestions,
        defaults=PathsQuery.model_fields,
    )
    return page, status


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/paths", "paths", paths)


PAGE = Page("umetrics_admin.paths", "Paths", register)
