"""What the Lifecycle and Stickiness pages share: a form of one event, an interval and property
filters over a date range, and one chart of the route's answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic
from flask import Response, request

from ...insights import list_dashboards
from ...queries.buckets import INTERVALS
from ..access import current_scope
from ..page import Chart, render_page
from ..reports import saved_params
from .date_range import Measure, compare_table, dashed_previous
from .report_forms import (
    BLANK_FILTER_ROWS,
    OPERATORS,
    FormError,
    event_choices,
    filter_rows,
    filters_param,
    form_answer,
    try_report,
)


def person_report_page(
    template: str,
    title: str,
    endpoint: Callable[..., Any],
    model: type[pydantic.BaseModel],
    chart: Callable[[dict[str, Any]], Chart],
    measures: Callable[[dict[str, Any], dict[str, Any]], list[Measure]],
    links: Callable[[dict[str, Any], list[str] | None], list[Any]],
    kind: str,
) -> Response | str:
    """The page of ``endpoint``'s answer drawn by ``chart``, its bars opening the persons
    behind them (``links``), savable as an insight of ``kind``; 400 with the message when the
    form is refused."""
    rows = filter_rows()
    error: str | None = None
    answer: dict[str, Any] | None = None
    try:
        filters = filters_param(rows)
    except FormError as exc:
        error, filters = str(exc), None
    if error is None:
        answer, error = try_report(endpoint, model, {"filters": filters})
    charts = [] if answer is None else [chart(answer)]
    compare = None
    if answer is not None and answer.get("previous"):  # the route's own compare=previous
        compare = compare_table(charts[0].key, measures(answer, answer["previous"]))
        if not charts[0].stacked:  # stacked bars would pile the previous period on top
            dashed_previous(charts[0], chart(answer["previous"]))
    for drawn in charts:
        drawn.links = links(answer or {}, filters)
    saved = None if answer is None else saved_params(model, {"filters": filters})
    event = request.args.get("event") or None
    body = render_page(
        template,
        title=title,
        charts=charts,
        tables=[compare] if compare else [],
        compare=compare,
        error=error,
        answer=answer,
        events=event_choices([event]),
        event=event,
        intervals=INTERVALS,
        operators=OPERATORS,
        rows=rows,
        blank_rows=BLANK_FILTER_ROWS,
        insight_kind=kind,
        insight_params=saved,
        dashboards=list_dashboards(scope_id=current_scope()) if saved else [],
    )
    return form_answer(body, error)
