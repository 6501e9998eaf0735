"""The Lifecycle page: new, returning, resurrecting and dormant persons per period as stacked
bars (dormant below zero, as PostHog draws it), from ``/api/query/lifecycle``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from ...api.reports.lifecycle import LifecycleQuery, query_lifecycle
from ...queries.lifecycle import STATUSES
from ..chart_notes import mark_annotations
from ..formatting import column_label
from ..page import Chart, Table
from . import Page
from .compare_blocks import lifecycle_measures
from .person_report import person_report_page
from .persons_behind import persons_url
from .report_forms import short_time

#: Each status's colour: an index into the dashboard palette (admin.js): green, blue, orange, red.
COLORS = {"new": 3, "returning": 0, "resurrecting": 2, "dormant": 1}


def lifecycle_chart(answer: dict[str, Any]) -> Chart:
    """Stacked bars per period; the table keeps dormant as the positive count REST answers."""
    periods = answer["periods"]
    title = f"Persons per {answer['interval']} by lifecycle status"
    datasets = [
        {
            "label": column_label(status),
            "data": [-p[status] if status == "dormant" else p[status] for p in periods],
            "color": COLORS[status],
        }
        for status in STATUSES
    ]
    table = Table(
        "lifecycle",
        title,
        ["time", *STATUSES, "active"],
        [[p["time"], *(p[s] for s in STATUSES), p["active"]] for p in periods],
    )
    labels = [short_time(p["time"], answer["interval"]) for p in periods]
    chart = Chart("lifecycle", title, "bar", labels, datasets, table, stacked=True)
    return mark_annotations(chart, [p["time"] for p in periods], answer["interval"])


def bar_links(answer: dict[str, Any], filters: list[str] | None) -> list[Any]:
    """Per status, per period: the persons behind the bar."""
    return [
        [
            persons_url("lifecycle", {"filters": filters, "time": p["time"], "status": status})
            for p in answer["periods"]
        ]
        for status in STATUSES
    ]


def view() -> Response | str:
    return person_report_page(
        "lifecycle.html",
        "Lifecycle",
        query_lifecycle,
        LifecycleQuery,
        lifecycle_chart,
        lifecycle_measures,
        bar_links,
        "lifecycle",
    )


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/lifecycle", "lifecycle", view)


PAGE = Page("umetrics_admin.lifecycle", "Lifecycle", register)
