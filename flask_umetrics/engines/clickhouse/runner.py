"""Running a report statement on ClickHouse: the app's client, bound parameters, the report
settings of ``expressions.REPORT_SETTINGS`` and ``UMETRICS_QUERY_TIMEOUT_SECONDS`` as
``max_execution_time`` (a report that runs out of time raises ``QueryTimeout``, REST 503)."""

from __future__ import annotations

from typing import Any

from ...state import current_state
from .expressions import REPORT_SETTINGS, Params

#: ClickHouse's error code for a query stopped by ``max_execution_time``.
_TIMEOUT_EXCEEDED = "TIMEOUT_EXCEEDED"


def is_clickhouse() -> bool:
    """True when the app's events live in ClickHouse (reports take their ClickHouse path)."""
    return bool(current_state().event_store.name == "clickhouse")


def rows(
    sql: str, params: Params, extra_settings: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """The result rows of ``sql`` with ``params`` bound server-side (and ``extra_settings``)."""
    from ...queries.connection import QueryTimeout

    state = current_state()
    seconds = float(state.settings["UMETRICS_QUERY_TIMEOUT_SECONDS"])
    settings = dict(REPORT_SETTINGS, **(extra_settings or {}))
    if seconds > 0:
        settings["max_execution_time"] = seconds
    client = state.event_store.client  # type: ignore[attr-defined]
    try:
        result = client.query(sql, parameters=params.values, settings=settings)
    except Exception as exc:
        if seconds > 0 and _TIMEOUT_EXCEEDED in str(exc):
            raise QueryTimeout(seconds) from exc
        raise
    return list(result.result_rows)
