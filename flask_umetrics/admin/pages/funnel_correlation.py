"""The Funnels page's "Events that predict conversion" table: the funnel correlation route's
answer for the whole funnel (no breakdown) shown on the page (``/api/query/funnel/correlation``),
its counts linked to the persons behind them (``/api/query/funnel/correlation/persons``)."""

from __future__ import annotations

from typing import Any

from ...api.reports.funnel_correlation import FunnelCorrelationQuery, query_funnel_correlation
from ..page import Table
from .persons_behind import persons_url
from .report_forms import try_report

KEY = "funnel-correlation"
COLUMNS = ["event", "predicts", "odds ratio", "converted who did it", "dropped who did it"]
#: What each kind of event predicts, as the table says it.
PREDICTS = {"success": "conversion", "failure": "drop-off"}
#: The funnel parameters correlation does not take: the whole funnel, its steps view.
WHOLE = {
    "breakdown": None,
    "breakdown_limit": None,
    "breakdown_attribution": None,
    "breakdown_attribution_step": None,
    "mode": None,
}


#: Per row of the table: the persons behind its converted and its dropped count.
Links = list[tuple[str, str]]


def correlation(overrides: dict[str, Any]) -> tuple[Table, dict[str, Any], Links] | None:
    """The table, the route's answer and the rows' persons links for the page's funnel
    (``overrides``: its steps, window, filters); None when the route refuses the input (the
    funnel shows why)."""
    answer, error = try_report(
        query_funnel_correlation, FunnelCorrelationQuery, {**overrides, **WHOLE}
    )
    if error is not None or answer is None:
        return None
    rows = [
        [
            e["event"],
            PREDICTS[e["correlation_type"]],
            e["odds_ratio"],
            e["success_count"],
            e["failure_count"],
        ]
        for e in answer["events"]
    ]
    whole = {**overrides, **WHOLE}
    links = [
        (
            persons_url("funnel_correlation", {**whole, "event": e["event"], "converted": "true"}),
            persons_url("funnel_correlation", {**whole, "event": e["event"], "converted": "false"}),
        )
        for e in answer["events"]
    ]
    return Table(KEY, "Events that predict conversion", COLUMNS, rows), answer, links
