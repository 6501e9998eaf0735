"""The previous period of a report page ("Compare with previous period").

Every report page has the same date-range control (``_date_range.html``: a preset kept in the
URL as ``date_range=``, or custom dates) and the same checkbox, ``compare=previous``. Routes
that answer ``compare=previous`` themselves (trends, volume, lifecycle, stickiness) get it
passed through; for the others the page runs the same REST route again over the previous
range, the one ``queries/compare.py`` computes (as many local days, just before), so the
previous numbers are the report's own, not a second definition of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pydantic
from flask import request

from ...api.reports.params import ReportQuery
from ...api.router import parse_query_args
from ...errors import APIError, ValidationError
from ...queries.compare import previous_context
from ..access import current_scope
from ..reports import report_args
from .report_forms import try_report


def comparing() -> bool:
    """The page's "Compare with previous period" box is ticked."""
    return request.args.get("compare") == "previous"


def previous_overrides(
    model: type[pydantic.BaseModel], overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``overrides`` with the previous range's dates instead of the page's range (its preset,
    dates or default, read by ``model`` as the route reads them)."""
    query = parse_query_args(model, report_args(model, overrides))
    assert isinstance(query, ReportQuery)
    previous = previous_context(query.context(current_scope()), "day")
    return {
        **(overrides or {}),
        "date_range": None,
        "date_from": previous.date_from.isoformat(),
        "date_to": previous.date_to.isoformat(),
    }


def previous_report(
    endpoint: Callable[..., Any],
    model: type[pydantic.BaseModel],
    overrides: Mapping[str, Any] | None = None,
) -> Any | None:
    """The route's answer over the previous range when the page compares, else None (also
    when the previous range cannot be computed: the page's own error shows already)."""
    if not comparing():
        return None
    try:
        changed = previous_overrides(model, overrides)
    except (APIError, ValidationError):
        return None
    answer, _ = try_report(endpoint, model, changed)
    return answer
