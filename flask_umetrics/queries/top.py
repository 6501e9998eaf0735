"""Top events, and top values of one event's property: by count descending, ties by name."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from ..db.tables import events
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from .connection import report_connection
from .context import Count, ReportContext
from .sql import by_codepoint, person_events, prop_text


@dataclass(frozen=True)
class TopItem:
    key: str
    count: Count


@dataclass(frozen=True)
class TopResult:
    items: list[TopItem]
    sampled: float | None = None


def top_events(ctx: ReportContext, *, limit: int = 10) -> TopResult:
    if is_clickhouse():
        from ..engines.clickhouse import top as clickhouse

        found = clickhouse.top_events(ctx, limit)
        return TopResult([TopItem(key, ctx.scale(n)) for key, n in found], ctx.sample)
    rows = ctx.rows(person_events(ctx.scope_id).where(*ctx.in_range(), *ctx.event_filters()))
    query = (
        select(rows.c.event, func.count().label("n"))
        .group_by(rows.c.event)
        .order_by(func.count().desc(), by_codepoint(rows.c.event))
        .limit(limit)
    )
    with report_connection() as connection:
        items = [TopItem(row.event, ctx.scale(row.n)) for row in connection.execute(query)]
    return TopResult(items, ctx.sample)


def top_property_values(
    ctx: ReportContext, *, event: str, property: str, limit: int = 10
) -> TopResult:
    """Values of ``property`` on ``event``; events without the property are left out."""
    if is_clickhouse():
        from ..engines.clickhouse import top as clickhouse

        found = clickhouse.top_property_values(ctx, event, property, limit)
        return TopResult([TopItem(key, ctx.scale(n)) for key, n in found], ctx.sample)
    value = prop_text(events.c.properties, property)
    rows = ctx.rows(
        person_events(ctx.scope_id)
        .add_columns(value.label("value"))
        .where(*ctx.in_range(), *ctx.event_filters(), events.c.event == event, value.is_not(None))
    )
    query = (
        select(rows.c.value, func.count().label("n"))
        .group_by(rows.c.value)
        .order_by(func.count().desc(), by_codepoint(rows.c.value))
        .limit(limit)
    )
    with report_connection() as connection:
        items = [TopItem(row.value, ctx.scale(row.n)) for row in connection.execute(query)]
    return TopResult(items, ctx.sample)


def top(
    ctx: ReportContext, *, event: str | None = None, property: str | None = None, limit: int = 10
) -> TopResult:
    """Top values of ``event``'s ``property`` when a property is named, else top events."""
    if property is None:
        return top_events(ctx, limit=limit)
    if event is None:
        raise ValidationError("event", "is required with property")
    return top_property_values(ctx, event=event, property=property, limit=limit)
