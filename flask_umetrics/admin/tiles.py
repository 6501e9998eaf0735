"""How a saved insight is drawn on a dashboard: its REST answer as a chart, or as numbers.

One builder per insight kind (``TILE_BUILDERS``); a kind without one (a report added later)
shows the numbers at the top of its answer until it gets one. Charts reuse the report pages'
own builders, so a tile looks like the page it was saved from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..insights import Insight
from .chart_notes import mark_annotations
from .page import Chart, series_chart
from .pages.attribution import attribution_chart
from .pages.date_range import dashed_previous
from .pages.events import _trends_chart
from .pages.funnel_correlation import PREDICTS
from .pages.funnels import _charts as _funnel_charts
from .pages.lifecycle import lifecycle_chart
from .pages.report_forms import short_time
from .pages.retention import _curve
from .pages.stickiness import stickiness_chart

#: (label, value, format) of a tile showing numbers; format as the ``um_cell`` filter takes it.
Number = tuple[str, Any, str | None]


@dataclass
class TileView:
    """What one tile shows: a chart, or numbers (and their table for the CSV link)."""

    chart: Chart | None = None
    numbers: list[Number] = field(default_factory=list)


def _keyed(chart: Chart, key: str) -> Chart:
    chart.key = key
    chart.table.key = key
    return chart


def _trends(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    chart = _trends_chart(answer)[0]
    if answer.get("previous"):  # an insight saved with compare=previous
        dashed_previous(chart, _trends_chart(answer["previous"])[0])
    starts = [point["time"] for point in answer["results"][0]["series"]]
    return TileView(mark_annotations(chart, starts, answer["interval"]))


def _volume(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    labels = [short_time(p["time"], answer["interval"]) for p in answer["series"]]
    counts: list[float | None] = [p["count"] for p in answer["series"]]
    chart = series_chart("volume", "Events", labels, {"events": counts})
    starts = [p["time"] for p in answer["series"]]
    return TileView(mark_annotations(chart, starts, answer["interval"]))


def _bars(title: str, column: str, rows: list[tuple[str, Any]]) -> TileView:
    labels = [label for label, _ in rows]
    data: list[float | None] = [value for _, value in rows]
    return TileView(series_chart("bars", title, labels, {"count": data}, kind="hbar",
                                 label_column=column))  # fmt: skip


def _top(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    prop = params.get("property")
    title = f"Top values of {prop}" if prop else "Top events"
    return _bars(title, prop or "event", [(i["key"], i["count"]) for i in answer["items"]])


def _funnel(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    return TileView(_funnel_charts(answer)[0])


def _funnel_correlation(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    """The events by odds ratio, each labelled with what it predicts (as the Funnels page's
    table): success events first, the strongest on top."""
    labels = [f"{e['event']} ({PREDICTS[e['correlation_type']]})" for e in answer["events"]]
    ratios: list[float | None] = [e["odds_ratio"] for e in answer["events"]]
    return TileView(
        series_chart(
            "funnel-correlation",
            "Events that predict conversion",
            labels,
            {"odds ratio": ratios},
            kind="hbar",
            label_column="event",
        )
    )


def _retention(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    return TileView(_curve(answer))


def _sessions(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    return TileView(
        numbers=[
            ("Sessions", answer["count"], None),
            ("Median duration", answer["median_duration"], "duration"),
            ("Bounce rate", answer["bounce_rate"], "percent"),
            ("Page views per session", answer["pageviews_per_session"], None),
        ]
    )


def _active(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    if "series" not in answer:
        return TileView(numbers=[("Active persons", answer["count"], None)])
    labels = [short_time(p["time"], "day") for p in answer["series"]]
    values: list[float | None] = [p["value"] for p in answer["series"]]
    return TileView(series_chart("active", answer["window"].upper(), labels, {"persons": values}))


def _paths(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    rows = [
        (f"{t['from']} \u2192 {t['to']}", t["persons"])
        for step in answer["steps"]
        for t in step["transitions"]
    ]
    return _bars("Path transitions", "transition", rows[:15])


def _attribution(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    return TileView(attribution_chart(answer))  # channels by their labels, as on the page


def _cohorts(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    labels = [c["start"][:10] for c in answer["cohorts"]]
    sizes: list[float | None] = [c["size"] for c in answer["cohorts"]]
    title = f"New persons per {answer['period']}"
    return TileView(series_chart("cohorts", title, labels, {"persons": sizes}, kind="bar"))


def _lifecycle(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    return TileView(lifecycle_chart(answer))


def _stickiness(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    return TileView(stickiness_chart(answer))


def _live(answer: dict[str, Any], params: dict[str, Any]) -> TileView:
    labels = [short_time(m["time"], "hour") for m in answer["per_minute"]]
    counts: list[float | None] = [m["count"] for m in answer["per_minute"]]
    return TileView(series_chart("live", "Events per minute", labels, {"events": counts}))


def _numbers(answer: Any, params: dict[str, Any]) -> TileView:
    """The top-level numbers of any answer (the fallback of a kind without a builder)."""
    if not isinstance(answer, dict):
        return TileView()
    return TileView(
        numbers=[
            (name.replace("_", " ").capitalize(), value, None)
            for name, value in answer.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        ]
    )


#: Insight kind -> the tile it draws from (its answer, its saved parameters); add one line
#: for a new report kind.
TILE_BUILDERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], TileView]] = {
    "trends": _trends,
    "volume": _volume,
    "top": _top,
    "funnel": _funnel,
    "funnel_correlation": _funnel_correlation,
    "retention": _retention,
    "sessions": _sessions,
    "active": _active,
    "paths": _paths,
    "attribution": _attribution,
    "cohorts": _cohorts,
    "summary": _numbers,
    "lifecycle": _lifecycle,
    "stickiness": _stickiness,
    "live": _live,
}


def tile_view(insight: Insight, answer: Any, key: str) -> TileView:
    """The tile of the insight's ``answer``; its chart and table are keyed ``key`` (unique on
    the page, for the CSV link and test ids)."""
    builder = TILE_BUILDERS.get(insight.kind)
    view = (builder or _numbers)(answer, insight.params)
    if view.chart is not None:
        _keyed(view.chart, key)
    return view
