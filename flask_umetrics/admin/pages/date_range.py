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
from ..formatting import cell, column_label
from ..page import Chart, Table
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


def change_text(current: Any, previous: Any, fmt: str | None = None) -> str:
    """The change from ``previous`` to ``current``: in points for a share (``+3.3 pts``), in
    percent of the previous number otherwise (``+12.5%``); empty when there is none."""
    if not isinstance(current, (int, float)) or not isinstance(previous, (int, float)):
        return ""
    if fmt == "percent":
        return f"{(current - previous) * 100:+.1f} pts"
    if previous == 0:
        return ""
    return f"{(current - previous) / previous * 100:+.1f}%"


def previous_text(current: Any, previous: Any, fmt: str | None = None) -> str:
    """``previous 20.1%, +3.3 pts``: what the page shows next to a number it compares."""
    change = change_text(current, previous, fmt)
    shown = str(cell(previous, fmt))
    return f"previous {shown}, {change}" if change else f"previous {shown}"


#: One compared number: its label, this period's and the previous period's value, its format
#: (``percent`` for a share, ``duration`` for seconds, None for a count).
Measure = tuple[str, Any, Any, str | None]


def compare_table(key: str, measures: list[Measure]) -> Table:
    """The page's numbers next to the previous period's, with the change."""
    rows = [
        [column_label(label), _shown(now, fmt), _shown(before, fmt), change_text(now, before, fmt)]
        for label, now, before, fmt in measures
    ]
    return Table(f"{key}-compare", "Compared with the previous period", COMPARE_COLUMNS, rows)


COMPARE_COLUMNS = ["Measure", "This period", "Previous period", "Change"]


def _shown(value: Any, fmt: str | None) -> Any:
    """Shares and durations as their text (the table's columns mix counts, shares and times)."""
    return str(cell(value, fmt)) if fmt in ("percent", "duration") else value


def dashed_previous(chart: Chart, previous: Chart) -> Chart:
    """``chart`` with ``previous``'s datasets added dashed (named "... (previous)", each in the
    colour of the one it is compared with) and as columns of its table."""
    for index, dataset in enumerate(previous.datasets):
        chart.datasets.append(
            {
                **dataset,
                "label": f"{dataset['label']} (previous)",
                "dashed": True,
                "color": dataset.get("color", index),
            }
        )
    shown = previous.table.columns[1 : 1 + len(previous.datasets)]  # the charted columns
    columns = [f"{column} (previous)" for column in shown]
    chart.table.columns = [*chart.table.columns, *columns]
    for index, row in enumerate(chart.table.rows):
        later = (
            previous.table.rows[index][1 : 1 + len(columns)]
            if index < len(previous.table.rows)
            else []
        )
        row.extend([*later, *[None] * (len(columns) - len(later))])
    return chart


def totals_compared(key: str, now: Table, before: Table) -> Table:
    """A compare table of two tables of ``[name, total]`` rows, matched by name (a breakdown
    value missing from a period counts as none there)."""
    earlier = {row[0]: row[1] for row in before.rows}
    return compare_table(key, [(row[0], row[1], earlier.get(row[0]), None) for row in now.rows])
