"""Saved insights (a report query with a name) and dashboards (a grid of them).

See docs/insights-dashboards.md. ``kinds.py``: the reports that can be saved; ``checks.py``:
what is checked on save; ``store.py``: insights; ``boards.py``: dashboards; ``run.py``: running
them through their report routes; ``transfer.py``: the JSON export and import.
"""

from __future__ import annotations

from typing import Any

from .boards import (
    Dashboard,
    Tile,
    create_dashboard,
    delete_dashboard,
    get_dashboard,
    list_dashboards,
    update_dashboard,
)
from .kinds import INSIGHT_KINDS, InsightKind, register_insight_kind
from .run import Overrides, dashboard_results, run_insight
from .store import (
    Insight,
    create_insight,
    delete_insight,
    get_insight,
    list_insights,
    update_insight,
)
from .transfer import export_insights, import_insights


def insight_result(
    insight_id: int,
    *,
    scope_id: str | None = None,
    date_range: str | None = None,
    filters: list[dict[str, Any]] | None = None,
) -> Any:
    """The saved insight's answer (its report route's JSON), optionally over another relative
    ``date_range`` and with ``filters`` laid over its own; None when there is no such insight."""
    insight = get_insight(insight_id, scope_id=scope_id)
    if insight is None:
        return None
    return run_insight(insight, Overrides.checked(date_range, filters=filters))


__all__ = [
    "INSIGHT_KINDS",
    "Dashboard",
    "Insight",
    "InsightKind",
    "Overrides",
    "Tile",
    "create_dashboard",
    "create_insight",
    "dashboard_results",
    "delete_dashboard",
    "delete_insight",
    "export_insights",
    "get_dashboard",
    "get_insight",
    "import_insights",
    "insight_result",
    "list_dashboards",
    "list_insights",
    "register_insight_kind",
    "run_insight",
    "update_dashboard",
    "update_insight",
]
