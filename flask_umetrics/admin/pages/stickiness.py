"""The Stickiness page: persons by the number of periods of the range they did the event in,
as bars, from ``/api/query/stickiness``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from ...api.reports.stickiness import StickinessQuery, query_stickiness
from ..page import Chart, series_chart
from . import Page
from .compare_blocks import stickiness_measures
from .person_report import person_report_page
from .persons_behind import persons_url


def stickiness_chart(answer: dict[str, Any]) -> Chart:
    interval = answer["interval"]
    bars = answer["bars"]
    return series_chart(
        "stickiness",
        f"Persons by the number of {interval}s they did it on",
        [f"{b['periods']} {interval}{'' if b['periods'] == 1 else 's'}" for b in bars],
        {"persons": [b["persons"] for b in bars]},
        kind="bar",
        label_column="periods",
    )


def bar_links(answer: dict[str, Any], filters: list[str] | None) -> list[Any]:
    """Per bar: the persons who did it in exactly that many periods."""
    return [
        persons_url("stickiness", {"filters": filters, "periods": b["periods"]})
        for b in answer["bars"]
    ]


def view() -> Response | str:
    return person_report_page(
        "stickiness.html",
        "Stickiness",
        query_stickiness,
        StickinessQuery,
        stickiness_chart,
        stickiness_measures,
        bar_links,
        "stickiness",
    )


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/stickiness", "stickiness", view)


PAGE = Page("umetrics_admin.stickiness", "Stickiness", register)
