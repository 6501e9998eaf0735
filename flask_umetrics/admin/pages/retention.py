"""The Retention page: the cohort grid as a heat map, its counts as a table, and the retention
curve, from ``/api/query/retention``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, Response, request, url_for

from ...api.reports.retention import RetentionQuery, query_retention
from ...insights import list_dashboards
from ...queries.retention import BREAKDOWN_TYPES, MODES, PERIODS, WEEK_STARTS, WINDOWS
from ..access import current_scope
from ..formatting import time_zone
from ..page import Chart, Table, render_page, series_chart
from ..reports import saved_params
from . import Page
from .compare_blocks import retention_measures
from .date_range import compare_table, dashed_previous, previous_report
from .persons_behind import persons_url
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


@dataclass(frozen=True)
class Cell:
    """One heat-map cell; ``reached`` is False for a period that has not begun yet."""

    count: float
    fraction: float
    reached: bool

    @property
    def heat(self) -> int:
        """The cell's tint, 0..20: its retained share in 5% steps (``um-heat-N`` in admin.css;
        a class, not a ``style`` attribute, which the dashboard's CSP forbids)."""
        return round(20 * max(0.0, min(1.0, self.fraction)))

    @property
    def dark(self) -> bool:
        """Whether the background is dark enough to need light text."""
        return self.fraction >= 0.5


@dataclass(frozen=True)
class CohortRow:
    start: str
    size: float
    cells: list[Cell]


def _add_periods(start: datetime, period: str, count: int) -> datetime:
    """The start of the period ``count`` periods after the one starting at ``start``."""
    if period == "hour":
        return start + timedelta(hours=count)
    if period == "day":
        return start + timedelta(days=count)
    if period == "week":
        return start + timedelta(weeks=count)
    months = start.month - 1 + count
    return start.replace(year=start.year + months // 12, month=months % 12 + 1)


def _cohort_rows(answer: dict[str, Any], now: datetime) -> list[CohortRow]:
    rows = []
    for cohort in answer["cohorts"]:
        start = datetime.fromisoformat(cohort["start"])
        cells = [
            Cell(count, fraction, _add_periods(start, answer["period"], k) <= now)
            for k, (count, fraction) in enumerate(
                zip(cohort["counts"], cohort["fractions"], strict=True)
            )
        ]
        rows.append(CohortRow(cohort["start"], cohort["size"], cells))
    return rows


def _label(start: str, period: str) -> str:
    if period == "hour":
        return start[:16].replace("T", " ")
    return start[:7] if period == "month" else start[:10]


def _counts_table(
    answer: dict[str, Any],
    cohorts: list[dict[str, Any]] | None = None,
    key: str = "retention",
    title: str = "Retained persons per cohort",
) -> Table:
    columns = ["cohort", "size", *(f"{answer['period']} {k}" for k in range(answer["periods"] + 1))]
    rows = [
        [_label(c["start"], answer["period"]), c["size"], *c["counts"]]
        for c in (answer["cohorts"] if cohorts is None else cohorts)
    ]
    return Table(key, title, columns, rows)


def _breakdown_tables(answer: dict[str, Any]) -> list[Table]:
    """One counts table per breakdown value (the report's grids)."""
    return [
        _counts_table(
            answer,
            grid["cohorts"],
            f"retention-{index}",
            f"{answer['breakdown']} = {'(none)' if grid['value'] is None else grid['value']}",
        )
        for index, grid in enumerate(answer.get("breakdowns") or [])
    ]


def _curve(answer: dict[str, Any]) -> Chart:
    """The report's curve: retained share per period over the cohorts that have reached it,
    weighted by size (future periods do not pull it down); one more line per breakdown value."""
    labels = [f"{answer['period']} {k}" for k in range(answer["periods"] + 1)]
    series: dict[str, list[float | None]] = {"retained": answer["curve"]}
    for grid in answer.get("breakdowns") or []:
        value = "(none)" if grid["value"] is None else grid["value"]
        series[f"{answer['breakdown']} = {value}"] = grid["curve"]
    return series_chart(
        "retention-curve",
        "Retention curve (share of cohorts that reached the period)",
        labels,
        series,
        label_column="period",
        percent=True,
    )


#: Without a date range, the page shows this many cohorts of a week or month period (the REST
#: route's own default, the last 30 days, would give a monthly grid one cohort).
DEFAULT_COHORTS = {"week": 12, "month": 12}
#: The relative range "Save as insight" keeps for that default.
SAVED_DEFAULT_RANGE = {"hour": "-2d", "day": "-30d", "week": "-12w", "month": "-12m"}


def default_range(period: str, today: date | None = None) -> dict[str, Any]:
    """The page's parameters when its query string names no dates: the last 12 weeks or 12
    months (today included, days in ``UMETRICS_TIMEZONE``) with a column for each; for hours
    yesterday and today (48 cohorts, not the REST route's 720); nothing for days, whose default
    is the REST route's (30 days)."""
    if any(request.args.get(name) for name in ("date_from", "date_to", "date_range")):
        return {}
    today = today or datetime.now(time_zone()).date()
    if period == "hour":
        return {
            "date_from": (today - timedelta(days=1)).isoformat(),
            "date_to": (today + timedelta(days=1)).isoformat(),
        }
    cohorts = DEFAULT_COHORTS.get(period)
    if cohorts is None:
        return {}
    if period == "week":
        sunday = request.args.get("week_start") == "sunday"
        back = (today.weekday() + 1) % 7 if sunday else today.weekday()
        first = today - timedelta(days=back) - timedelta(weeks=cohorts - 1)
    else:
        index = today.year * 12 + today.month - 1 - (cohorts - 1)
        first = date(index // 12, index % 12 + 1, 1)
    overrides: dict[str, Any] = {
        "date_from": first.isoformat(),
        "date_to": (today + timedelta(days=1)).isoformat(),
    }
    if not request.args.get("periods"):
        overrides["periods"] = cohorts - 1
    return overrides


def _period_links() -> list[tuple[str, str]]:
    """This page with each period, the other parameters kept."""
    links = []
    for period in PERIODS:
        args: dict[str, Any] = request.args.to_dict(flat=False)
        args["period"] = [period]
        links.append((period, url_for("umetrics_admin.retention", **args)))
    return links


def view() -> Response | str:
    rows = filter_rows()
    error: str | None = None
    answer: dict[str, Any] | None = None
    cohorts: list[CohortRow] = []
    charts: list[Chart] = []
    tables: list[Table] = []
    try:
        filters = filters_param(rows)
    except FormError as exc:
        error, filters = str(exc), None
    period = request.args.get("period") or "week"
    defaults = default_range(period)
    if error is None:
        answer, error = try_report(
            query_retention, RetentionQuery, {"filters": filters, **defaults}
        )
    saved: dict[str, Any] | None = None
    cell_links: dict[tuple[str, int], str] = {}
    compare: Table | None = None
    if answer is not None:
        saved = saved_params(
            RetentionQuery, {"filters": filters, **defaults}, SAVED_DEFAULT_RANGE[period]
        )
        cohorts = _cohort_rows(answer, datetime.now(timezone.utc))
        # The heat map is the whole report: its cells' persons are not one breakdown value's.
        whole = {"breakdown": None, "breakdown_type": None, "breakdown_limit": None}
        picked = {"filters": filters, **defaults, "periods": answer["periods"], **whole}
        for row in cohorts:
            for k in range(len(row.cells)):
                cell_links[(row.start, k)] = persons_url(
                    "retention",
                    {**picked, "cohort": row.start, "period": [answer["period"], str(k)]},
                )
        charts.append(_curve(answer))
        tables.append(_counts_table(answer))
        tables.extend(_breakdown_tables(answer))
        previous = previous_report(
            query_retention, RetentionQuery, {"filters": filters, **defaults}
        )
        if previous is not None:  # the same route over the previous range
            before = _curve(previous)
            shares = (answer["curve"], previous["curve"])
            compare = compare_table("retention", retention_measures(answer, previous, shares))
            dashed_previous(charts[0], before)
            tables.append(compare)
    start_event = request.args.get("start_event") or None
    return_event = request.args.get("return_event") or None
    body = render_page(
        "retention.html",
        title="Retention",
        charts=charts,
        tables=tables,
        error=error,
        answer=answer,
        cohorts=cohorts,
        cell_links=cell_links,
        label=_label,
        curve=charts[0] if charts else None,
        curve_formats={name: "percent" for name in charts[0].table.columns[1:]} if charts else {},
        counts=tables[0] if tables else None,
        compare=compare,
        events=event_choices([start_event, return_event]),
        start_event=start_event,
        return_event=return_event,
        period=answer["period"] if answer else period,
        default_range_note=(
            f"Showing the last {DEFAULT_COHORTS.get(period, 48)} {period}s (today included); "
            "choose dates or a preset for another range."
            if defaults
            else None
        ),
        period_links=_period_links(),
        modes=MODES,
        week_starts=list(WEEK_STARTS),
        windows=WINDOWS,
        breakdown_types=BREAKDOWN_TYPES,
        breakdown_tables=tables[1:],
        operators=OPERATORS,
        rows=rows,
        blank_rows=BLANK_FILTER_ROWS,
        insight_params=saved,
        dashboards=list_dashboards(scope_id=current_scope()) if saved else [],
    )
    return form_answer(body, error)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/retention", "retention", view)


PAGE = Page("umetrics_admin.retention", "Retention", register)
