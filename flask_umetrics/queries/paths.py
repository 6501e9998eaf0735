"""Paths: from a start event (or a person's first event), the most frequent next events.

Each person's events in ``[date_from, date_to)`` (all of them, active or not, matching the
filters) are ordered by ``(ts, id)``, and consecutive repeats of one event collapse into one.
The path starts at the person's first occurrence of ``start_event`` in the range (persons
without it are left out), or at their first event when no start event is given. Step ``i`` is
the transition from the event at position ``i - 1`` after the start to the one at position
``i``. Per step: the top ``limit`` transitions by number of persons, ties by names ascending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Integer, case, func, literal, or_, select
from sqlalchemy.sql import ColumnElement

from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from .connection import report_connection
from .context import ReportContext
from .sql import by_codepoint, person_events

MAX_STEPS = 20
MAX_LIMIT = 100


class PathTransition(BaseModel):
    """One transition; a model rather than a dataclass because ``from`` is a Python keyword."""

    model_config = ConfigDict(frozen=True, serialize_by_alias=True)
    from_: str = Field(alias="from")
    to: str
    persons: int | float


@dataclass(frozen=True)
class PathStep:
    step: int
    transitions: list[PathTransition]


@dataclass(frozen=True)
class PathsResult:
    start_event: str | None
    steps: list[PathStep]
    sampled: float | None = None


def paths(
    ctx: ReportContext, *, start_event: str | None = None, steps: int = 5, limit: int = 10
) -> PathsResult:
    """Every step ``1..steps`` is listed, with an empty list when no person got that far."""
    if not 1 <= steps <= MAX_STEPS:
        raise ValidationError("steps", f"must be between 1 and {MAX_STEPS}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be between 1 and {MAX_LIMIT}")
    if is_clickhouse():
        from ..engines.clickhouse.paths import transitions

        found = [
            _Transition(int(step), src, dst, n)
            for step, src, dst, n in transitions(ctx, start_event, steps, limit)
        ]
    else:
        found = _sql_transitions(ctx, start_event, steps, limit)
    by_step: dict[int, list[PathTransition]] = {i: [] for i in range(1, steps + 1)}
    for row in found:
        by_step[row.step].append(
            PathTransition.model_validate(
                {"from": row.src, "to": row.dst, "persons": ctx.scale(row.n)}
            )
        )
    return PathsResult(
        start_event, [PathStep(i, items) for i, items in by_step.items()], ctx.sample
    )


@dataclass(frozen=True)
class _Transition:
    step: int
    src: str
    dst: str
    n: int


def _sql_transitions(
    ctx: ReportContext, start_event: str | None, steps: int, limit: int
) -> list[Any]:
    """The SQL engine's ``(step, src, dst, n)`` rows."""
    rows = ctx.rows(person_events(ctx.scope_id).where(*ctx.in_range(), *ctx.event_filters()))
    order = (rows.c.ts, rows.c.id)
    previous = func.lag(rows.c.event).over(partition_by=rows.c.person_id, order_by=order)
    marked = select(rows.c.person_id, rows.c.event, rows.c.ts, rows.c.id, previous.label("prev"))
    marked_rows = marked.subquery("marked")
    collapsed = (
        select(
            marked_rows.c.person_id,
            marked_rows.c.event,
            func.row_number()
            .over(
                partition_by=marked_rows.c.person_id,
                order_by=(marked_rows.c.ts, marked_rows.c.id),
            )
            .label("pos"),
        )
        .where(or_(marked_rows.c.prev.is_(None), marked_rows.c.prev != marked_rows.c.event))
        .subquery("collapsed")
    )
    # The start position per person as a window over the same rows (a join of the collapsed rows
    # with their own per-person minimum was a nested loop on SQLite: quadratic in events).
    start: ColumnElement[Any] = literal(1, Integer)
    if start_event is not None:
        start = func.min(case((collapsed.c.event == start_event, collapsed.c.pos))).over(
            partition_by=collapsed.c.person_id
        )
    started = select(collapsed, start.label("start")).subquery("started")
    # Each kept position with the event before it: positions are consecutive, so the previous
    # row is step k - 1 (one window pass rather than a self-join).
    relative = (
        select(
            (started.c.pos - started.c.start).label("k"),
            func.lag(started.c.event)
            .over(partition_by=started.c.person_id, order_by=started.c.pos)
            .label("src"),
            started.c.event.label("dst"),
        )
        .where(started.c.pos >= started.c.start, started.c.pos <= started.c.start + steps)
        .subquery("relative")
    )
    counted = (
        select(
            relative.c.k.label("step"),
            relative.c.src,
            relative.c.dst,
            func.count().label("n"),
        )
        .where(relative.c.k >= 1)
        .group_by(relative.c.k, relative.c.src, relative.c.dst)
        .subquery("counted")
    )
    ranked = select(
        counted,
        func.row_number()
        .over(
            partition_by=counted.c.step,
            order_by=(counted.c.n.desc(), by_codepoint(counted.c.src), by_codepoint(counted.c.dst)),
        )
        .label("rank"),
    ).subquery("ranked")
    query = (
        select(ranked.c.step, ranked.c.src, ranked.c.dst, ranked.c.n)
        .where(ranked.c.rank <= limit)
        .order_by(ranked.c.step, ranked.c.rank)
    )
    with report_connection() as connection:
        return list(connection.execute(query))
