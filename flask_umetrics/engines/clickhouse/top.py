"""Top events and top property values in ClickHouse SQL: ``(key, count)`` rows by count
descending, ties by code point (ClickHouse compares strings by bytes: UTF-8 code point order)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .expressions import Params, person_events, prop_text
from .runner import rows

if TYPE_CHECKING:
    from ...queries.context import ReportContext


def top_events(ctx: ReportContext, limit: int) -> list[tuple[Any, ...]]:
    params = Params()
    source = person_events(ctx, params)
    return rows(
        f"SELECT event AS top_key, count() AS n FROM {source} GROUP BY top_key "
        f"ORDER BY n DESC, top_key ASC LIMIT {params.bind(limit, 'UInt32')}",
        params,
    )


def top_property_values(
    ctx: ReportContext, event: str, property: str, limit: int
) -> list[tuple[Any, ...]]:
    params = Params()
    source = person_events(ctx, params, where=[f"event = {params.bind(event, 'String')}"])
    value = prop_text("properties", property, params)
    return rows(
        f"SELECT assumeNotNull(top_value) AS top_key, count() AS n FROM "
        f"(SELECT {value} AS top_value FROM {source}) WHERE top_value IS NOT NULL "
        f"GROUP BY top_key ORDER BY n DESC, top_key ASC LIMIT {params.bind(limit, 'UInt32')}",
        params,
    )
