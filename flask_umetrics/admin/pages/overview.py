"""The metrics panel: stat cards, a trend of any stat, DAU/WAU/MAU, top events, live feed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, request

from ...api.models import ScopedModel
from ...api.reports.basic import ActiveQuery, query_active
from ...api.reports.dashboard import query_dashboard
from ...api.reports.live import LiveQuery, query_live
from ...api.reports.params import ReportQuery
from ...api.router import parse_query_args
from ...api.stats import stats_overview
from ...events.filtered import filtered_totals
from ...state import current_state
from ...stats import StatReading, get_stat_series
from ...stats.store import get_recent_stats
from ..access import current_scope
from ..chart_notes import mark_annotations
from ..formatting import time_zone
from ..page import Chart, Table, render_page, series_chart
from ..reports import report_args, run_report
from . import Page
from .compare_blocks import summary_measures
from .date_range import compare_table, previous_report
from .events import event_trend_links

#: A card's change compares the latest reading with the last one at least this much older.
COMPARE_PERIOD = timedelta(days=7)
SPARKLINE_READINGS = 30
TREND_READINGS = 90


@dataclass(frozen=True)
class StatCard:
    key: str
    label: str
    format: str
    latest: float | None
    previous: float | None
    captured_at: str | None
    sparkline: Chart
    #: Whole days between the latest reading and the one it is compared with.
    compared_days: int | None = None
    first_captured_at: str | None = None

    @property
    def change(self) -> float | None:
        if self.latest is None or self.previous is None:
            return None
        return self.latest - self.previous

    @property
    def change_ratio(self) -> float | None:
        if self.change is None or not self.previous:
            return None
        return self.change / abs(self.previous)


def _previous(readings: list[StatReading]) -> StatReading | None:
    """The newest reading at least :data:`COMPARE_PERIOD` older than the latest one; for a
    collector with less history, its oldest reading when that is at least a day older (the
    card then says how many days it compares)."""
    if not readings:
        return None
    cutoff = readings[-1].captured_at - COMPARE_PERIOD
    older = [reading for reading in readings if reading.captured_at <= cutoff]
    if older:
        return older[-1]
    if readings[-1].captured_at - readings[0].captured_at >= timedelta(days=1):
        return readings[0]
    return None


def _stat_cards(scope_id: str, collectors: list[dict[str, Any]]) -> list[StatCard]:
    recent = get_recent_stats(
        [collector["key"] for collector in collectors],
        scope_id=scope_id,
        limit=SPARKLINE_READINGS + 30,
    )
    cards = []
    for collector in collectors:
        readings = recent.get(collector["key"], [])
        previous = _previous(readings)
        shown = readings[-SPARKLINE_READINGS:]
        sparkline = series_chart(
            f"stat-{collector['key']}",
            collector["label"],
            [local_label(r.captured_at) for r in shown],
            {collector["label"]: [r.value for r in shown]},
            kind="sparkline",
        )
        latest = collector["latest"]
        cards.append(
            StatCard(
                key=collector["key"],
                label=collector["label"],
                format=collector["format"],
                latest=latest["value"] if latest else None,
                previous=previous.value if previous else None,
                captured_at=latest["captured_at"] if latest else None,
                sparkline=sparkline,
                compared_days=(
                    (readings[-1].captured_at - previous.captured_at).days if previous else None
                ),
                first_captured_at=(
                    readings[0].captured_at.isoformat() if len(readings) > 1 else None
                ),
            )
        )
    return cards


def local_label(moment: datetime) -> str:
    """A reading's time as a chart label, in the app's time zone, to the minute."""
    return moment.astimezone(time_zone()).strftime("%Y-%m-%d %H:%M")


def reading_labels(moments: list[datetime]) -> list[str]:
    """Chart labels of readings: their local dates when each day has one reading (a daily
    snapshot: the same clock time on every label is noise), else to the minute."""
    labels = [local_label(moment) for moment in moments]
    days = [label[:10] for label in labels]
    return days if len(set(days)) == len(days) else labels


def _stat_trend(
    scope_id: str, metrics: list[str], labels: dict[str, str]
) -> tuple[str | None, Chart | None]:
    key = request.args.get("stat") or (metrics[0] if metrics else None)
    if key is None:
        return None, None
    readings = get_stat_series(key, scope_id=scope_id, limit=TREND_READINGS)
    label = labels.get(key, key)
    chart = series_chart(
        "stat-trend",
        f"{label} over time",
        reading_labels([r.captured_at for r in readings]),
        {label: [r.value for r in readings]},
    )
    return key, chart


def _active_chart() -> Chart:
    series: dict[str, list[float | None]] = {}
    labels: list[str] = []
    for window in ("dau", "wau", "mau"):
        points = run_report(query_active, ActiveQuery, {"series": window})["series"]
        labels = [point["time"][:10] for point in points]
        series[window.upper()] = [point["value"] for point in points]
    chart = series_chart("active-users", "Active users", labels, series)
    return mark_annotations(chart, [point["time"] for point in points], "day")


def _top_events_chart(summary: dict[str, Any]) -> Chart:
    items = summary["top_events"]
    chart = series_chart(
        "top-events",
        "Top events",
        [item["key"] for item in items],
        {"count": [item["count"] for item in items]},
        kind="hbar",
        label_column="event",
    )
    chart.links = event_trend_links(chart.labels)
    return chart


def filtered_counts(scope_id: str) -> dict[str, Any]:
    """Events the ingestion filters dropped (bots, Do-Not-Track) in the page's date range."""
    ctx = parse_query_args(ReportQuery, report_args(ReportQuery)).context(scope_id)
    first = ctx.date_from.astimezone(ctx.zone).date()
    last = (ctx.date_to - timedelta(microseconds=1)).astimezone(ctx.zone).date()
    totals = filtered_totals(current_state().engine, scope_id, first, last)
    settings = current_state().settings
    return {
        "bot": totals["bot"],
        "dnt": totals["dnt"],
        "filter_bots": settings["UMETRICS_FILTER_BOTS"],
        "respect_dnt": settings["UMETRICS_RESPECT_DNT"],
    }


def overview() -> Response | str:
    scope_id = current_scope()
    summary = run_report(query_dashboard, ReportQuery)
    stats = run_report(stats_overview, ScopedModel)
    cards = _stat_cards(scope_id, stats["collectors"])
    metrics = stats["metrics"]
    stat_labels = {collector["key"]: collector["label"] for collector in stats["collectors"]}
    stat_key, trend = _stat_trend(scope_id, metrics, stat_labels)
    live = run_report(query_live, LiveQuery)
    totals = Table(
        "summary",
        "Summary",
        ["metric", "value"],
        [
            ["total_events", summary["total_events"]],
            ["dau", summary["dau"]],
            ["wau", summary["wau"]],
            ["mau", summary["mau"]],
            ["new_persons", summary["new_persons"]],
            ["sessions", summary["sessions"]],
        ],
    )
    previous = previous_report(query_dashboard, ReportQuery)
    compare = compare_table("summary", summary_measures(summary, previous)) if previous else None
    charts = [_active_chart(), _top_events_chart(summary)]
    if trend is not None:
        charts.insert(0, trend)
    return render_page(
        "overview.html",
        title="Overview",
        charts=charts + [card.sparkline for card in cards],
        tables=[totals, *([compare] if compare else [])],
        compare=compare,
        summary=summary,
        summary_table=totals,
        cards=cards,
        metrics=metrics,
        stat_labels=stat_labels,
        stat_key=stat_key,
        filtered=filtered_counts(scope_id),
        trend=trend,
        active_chart=charts[-2],
        top_chart=charts[-1],
        live=live,
    )


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/", "overview", overview)


PAGE = Page("umetrics_admin.overview", "Overview", register)
