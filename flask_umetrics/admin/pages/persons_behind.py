"""The persons behind a number: the list a funnel bar, a funnel correlation count, a retention
cell, a trend point, a lifecycle bar, a stickiness bar or a saved segment opens
(``/api/query/<report>/persons``), paged, with a CSV link and "save as static segment"."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pydantic
from flask import Blueprint, Response, flash, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ...api.reports.persons import (
    FunnelCorrelationPersonsQuery,
    FunnelPersonsQuery,
    LifecyclePersonsQuery,
    RetentionPersonsQuery,
    SegmentPersonsQuery,
    StickinessPersonsQuery,
    TrendsPersonsQuery,
    query_funnel_correlation_persons,
    query_funnel_persons,
    query_lifecycle_persons,
    query_retention_persons,
    query_segment_persons,
    query_stickiness_persons,
    query_trends_persons,
)
from ...errors import ValidationError
from ...queries.people import MAX_LIMIT
from ...queries.segments import MAX_STATIC_MEMBERS, save_segment
from ..access import actor, can_manage, current_scope
from ..errors import AdminError
from ..page import render_page
from ..reports import report_args, run_report
from . import Page
from .report_forms import form_answer, try_report

REPORTS: dict[str, tuple[Callable[..., Any], type[pydantic.BaseModel], str]] = {
    "funnel": (query_funnel_persons, FunnelPersonsQuery, "umetrics_admin.funnels"),
    "funnel_correlation": (
        query_funnel_correlation_persons,
        FunnelCorrelationPersonsQuery,
        "umetrics_admin.funnels",
    ),
    "retention": (query_retention_persons, RetentionPersonsQuery, "umetrics_admin.retention"),
    "trends": (query_trends_persons, TrendsPersonsQuery, "umetrics_admin.events"),
    "lifecycle": (query_lifecycle_persons, LifecyclePersonsQuery, "umetrics_admin.lifecycle"),
    "stickiness": (query_stickiness_persons, StickinessPersonsQuery, "umetrics_admin.stickiness"),
    "segment": (query_segment_persons, SegmentPersonsQuery, "umetrics_admin.people"),
}
PAGE_SIZE = 50


def persons_url(report: str, overrides: Mapping[str, Any]) -> str:
    """This page for ``report``, with the report page's parameters and ``overrides`` (what picks
    the number) in the form the REST route takes."""
    _, model, _ = REPORTS[report]
    args: dict[str, Any] = dict(report_args(model, overrides).to_dict(flat=False))
    args["scope_id"] = request.args.get("scope_id") or None
    return url_for("umetrics_admin.persons_behind", report=report, **args)


def _args() -> dict[str, Any]:
    """The request's query string, repeated names as lists (for ``url_for``)."""
    return dict(request.args.to_dict(flat=False))


def _report(report: str) -> tuple[Callable[..., Any], type[pydantic.BaseModel], str]:
    if report not in REPORTS:
        raise AdminError(404, f"report: no persons list for {report!r}")
    return REPORTS[report]


def _title(report: str) -> str:
    args = request.args
    if report == "funnel":
        step = args.get("funnel_step", "?")
        name = _step_event(args.getlist("step"), step)
        step += f" ({name})" if name else ""
        group = ""
        if args.get("breakdown"):  # one breakdown group's persons
            value = args.get("breakdown_value")
            shown = "(other values)" if value == "$other" else value or "(no value)"
            group = f", {args['breakdown']} = {shown}"
        if args.get("dropoff") == "true":
            return f"Persons who dropped off before funnel step {step}{group}"
        return f"Persons who reached funnel step {step}{group}"
    if report == "funnel_correlation":
        outcome = "converted" if args.get("converted") == "true" else "dropped off"
        return f"Persons who {outcome} and did {args.get('event', '?')} on the way"
    if report == "retention":
        names = [v for v in args.getlist("period") if not v.isdigit()]
        cohort = args.get("cohort", "?")[:10]  # the cohort's first day
        return f"Cohort of {cohort}: persons back in {(names or ['week'])[0]} {_column()}"
    if report == "lifecycle":
        return (
            f"{args.get('status', '?').capitalize()} persons of the period {args.get('time', '?')}"
        )
    if report == "segment":
        return f"Persons of the segment {args.get('segment', '?')}"
    if report == "stickiness":
        periods = args.get("periods", "?")
        unit = args.get("interval", "day") + ("" if periods == "1" else "s")
        return f"Persons who did it in exactly {periods} {unit}"
    value = args.get("breakdown_value")
    return f"Persons behind the point {args.get('time', '?')}" + (f" ({value})" if value else "")


def _step_event(steps: list[str], number: str) -> str | None:
    """The event of funnel step ``number`` (1-based), so a title names what was reached:
    a step is an event name or a JSON ``{"event": ...}`` with filters."""
    if not number.isdigit() or not 1 <= int(number) <= len(steps):
        return None
    step = steps[int(number) - 1]
    try:
        found = json.loads(step)
    except ValueError:
        return step
    return str(found.get("event")) if isinstance(found, dict) and found.get("event") else step


def _column() -> str:
    numbers = [v for v in request.args.getlist("period") if v.isdigit()]
    return numbers[0] if numbers else "?"


def view(report: str) -> Response | str:
    endpoint, model, back = _report(report)
    offset = _offset()
    answer, error = try_report(
        endpoint, model, {"limit": PAGE_SIZE, "offset": offset, "format": None}
    )
    pages: dict[str, str | None] = {"previous": None, "next": None}
    if answer is not None:
        if offset > 0:
            pages["previous"] = _page_link(report, max(offset - PAGE_SIZE, 0))
        if offset + PAGE_SIZE < answer["total"]:
            pages["next"] = _page_link(report, offset + PAGE_SIZE)
    body = render_page(
        "persons_behind.html",
        title=_title(report),
        error=error,
        answer=answer,
        pages=pages,
        report=report,
        back_url=url_for(back, **_back_args(report)),
        csv_href=url_for(
            f"umetrics_api.query_{report}_persons",
            **{**_args(), "format": "csv", "limit": MAX_LIMIT},
        ),
        can_save=can_manage(),
        max_members=MAX_STATIC_MEMBERS,
    )
    return form_answer(body, error)


def save(report: str) -> BaseResponse | str:
    """Every person of the list (up to the static segment limit), by their first distinct id."""
    endpoint, model, _ = _report(report)
    key = request.form.get("segment_key", "").strip()
    name = request.form.get("segment_name", "").strip()
    ids: list[str] = []
    offset = 0
    while True:
        page = run_report(endpoint, model, {"limit": MAX_LIMIT, "offset": offset, "format": None})
        if page["total"] > MAX_STATIC_MEMBERS:
            raise AdminError(
                400,
                f"segment: {page['total']} persons, a static segment holds {MAX_STATIC_MEMBERS}",
            )
        ids += [p["distinct_ids"][0] for p in page["persons"] if p["distinct_ids"]]
        offset += MAX_LIMIT
        if offset >= page["total"]:
            break
    try:
        save_segment(key, name=name, distinct_ids=ids, scope_id=current_scope(), actor=actor())
    except ValidationError as error:
        raise AdminError(400, f"segment_{error.field}: {error.message}") from error
    flash(f"Saved {len(ids)} persons as the static segment {key!r}.", "info")
    return redirect(url_for("umetrics_admin.persons_behind", report=report, **_args()))


def _offset() -> int:
    text = request.args.get("offset", "0")
    return int(text) if text.isdigit() else 0


def _page_link(report: str, offset: int) -> str:
    args = _args()
    args["offset"] = [str(offset)]
    return url_for("umetrics_admin.persons_behind", report=report, **args)


def _back_args(report: str) -> dict[str, Any]:
    """The report page's own parameters (what picks the number and the page dropped)."""
    dropped = {"funnel_step", "dropoff", "cohort", "time", "breakdown_value", "offset", "limit"}
    dropped |= {"status"} | ({"periods"} if report == "stickiness" else set())
    dropped |= {"segment"} if report == "segment" else set()
    dropped |= {"event", "converted"} if report == "funnel_correlation" else set()
    args = {k: v for k, v in _args().items() if k not in dropped}
    if "period" in args:
        args["period"] = [v for v in args["period"] if not v.isdigit()]
    return args


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/persons-behind/<report>", "persons_behind", view)
    bp.add_url_rule(
        "/persons-behind/<report>/segment", "persons_behind_save", save, methods=["POST"]
    )


PAGE = Page("umetrics_admin.persons_behind", None, register)
