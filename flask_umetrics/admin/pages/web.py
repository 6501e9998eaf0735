"""The Web page: the web overview of ``/api/query/web`` (numbers with their change, visitors
over time, one table per breakdown). Clicking a row adds a filter chip: the page is a link
with the filter added, so it works without script; ``static/pages/web.js`` only sizes bars."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request, url_for

from ...api.reports.web import WebQuery, query_web
from ...queries.attribution import channel_label
from ..chart_notes import mark_annotations
from ..page import render_page, series_chart
from . import Page
from .report_forms import form_answer, short_time, try_report

#: The breakdowns in page order: title, and the property a row filters on (None: derived, the
#: key is not a property value, so the row does not filter).
SECTIONS: tuple[tuple[str, str, str | None], ...] = (
    ("pages", "Top pages", "$pathname"),
    ("entry_pages", "Entry pages", "$pathname"),
    ("exit_pages", "Exit pages", "$pathname"),
    ("referrers", "Referrers", None),
    ("channels", "Channels", None),
    ("utm_sources", "UTM sources", None),
    ("utm_mediums", "UTM mediums", None),
    ("utm_campaigns", "UTM campaigns", "utm_campaign"),
    ("browsers", "Browsers", "$browser"),
    ("operating_systems", "Operating systems", "$os"),
    ("device_types", "Device types", "$device_type"),
)
NUMBERS: tuple[tuple[str, str, str], ...] = (
    ("visitors", "Visitors", "number"),
    ("pageviews", "Page views", "number"),
    ("sessions", "Sessions", "number"),
    ("bounce_rate", "Bounce rate", "percent"),
    ("visit_duration", "Visit duration", "duration"),
)


def _chips() -> list[dict[str, Any]]:
    """The page's filters (its ``filters`` parameters; unreadable ones are left to the
    report, which names the error)."""
    found: list[dict[str, Any]] = []
    for text in request.args.getlist("filters"):
        try:
            item = json.loads(text)
        except ValueError:
            continue
        for one in item if isinstance(item, list) else [item]:
            if isinstance(one, dict) and isinstance(one.get("key"), str):
                found.append(one)
    return found


def _url(filters: list[dict[str, Any]]) -> str:
    """This page with its other parameters and ``filters``."""
    args: dict[str, Any] = {
        key: request.args.getlist(key) for key in request.args if key != "filters"
    }
    if filters:
        args["filters"] = json.dumps(filters, separators=(",", ":"))
    return url_for("umetrics_admin.web", **args)


def _describe(item: dict[str, Any]) -> str:
    op = item.get("op", "eq")
    value = item.get("value", "")
    return f"{item['key']} = {value}" if op == "eq" else f"{item['key']} {op} {value}"


def view() -> Response | str:
    answer, error = try_report(query_web, WebQuery)
    chips = _chips()
    removals = [
        {"label": _describe(item), "url": _url(chips[:i] + chips[i + 1 :])}
        for i, item in enumerate(chips)
    ]
    charts = []
    sections = []
    if answer is not None:
        points = answer["series"]
        visitors = series_chart(
            "web-visitors",
            "Visitors over time",
            [short_time(p["date"], answer["interval"]) for p in points],
            {
                "visitors": [p["visitors"] for p in points],
                "pageviews": [p["pageviews"] for p in points],
            },
        )
        charts.append(mark_annotations(visitors, [p["date"] for p in points], answer["interval"]))
        for key, title, prop in SECTIONS:
            found = answer["breakdowns"][key]
            top = max((row["visitors"] for row in found), default=0) or 1
            rows = [
                {
                    **row,
                    # Channel keys are the library's names (the API keeps them); people read
                    # labels. Other keys are data, shown as they are.
                    "label": channel_label(row["key"]) if key == "channels" else row["key"],
                    "share": round(100 * row["visitors"] / top, 1),
                    "url": None
                    if prop is None
                    else _url([*chips, {"key": prop, "op": "eq", "value": row["key"]}]),
                }
                for row in found
            ]
            sections.append({"key": key, "title": title, "rows": rows})
    body = render_page(
        "web.html",
        title="Web",
        charts=charts,
        error=error,
        answer=answer,
        numbers=NUMBERS,
        sections=sections,
        chips=removals,
        clear_url=_url([]),
    )
    return form_answer(body, error)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/web", "web", view)


PAGE = Page("umetrics_admin.web", "Web", register)
