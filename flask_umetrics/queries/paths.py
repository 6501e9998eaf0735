"""Paths: from a start event (or to an end event), the most frequent next (or previous) steps.

Each person's events in ``[date_from, date_to)`` (all of them, active or not, matching the
filters) are ordered by ``(ts, id)``. With ``unit="session"`` each session is a path of its own:
only active events, split by the rule of ``queries/sessions.py`` (a client ``session_id``, or the
timeout); a session crossing a range edge contributes its part inside the range. A step is the
event's name, or with ``pathnames`` a ``$pageview``'s ``$pathname`` property (its name when it
has none); ``cleaning`` rules (``queries/path_cleaning.py``) then rewrite it. Events whose name
or step is in ``exclude`` are left out, and consecutive repeats of one step collapse into one.

The path starts at the first occurrence of ``start_event`` (units without it are left out), or
at the unit's first step when no start event is given. Step ``i`` is the transition from the
step at position ``i - 1`` after the start to the one at position ``i``. With ``end_event``
instead, the path ends at the first occurrence of the end event and steps count back: step 1
is the transition into the end event, step 2 the one before it. Per step: the top ``limit``
transitions by number of units, ties by names ascending. ``start_event`` and ``end_event`` name
steps as shown (a pathname with ``pathnames``, after cleaning).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Integer, case, func, literal, not_, or_, select
from sqlalchemy.sql import ColumnElement

from ..db.tables import events
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from .connection import report_connection
from .context import ReportContext
from .path_cleaning import CleaningRule, check_rules, replace_all
from .sessions import session_timeout_us, starts_session
from .sql import by_codepoint, person_events, prop_text

MAX_STEPS = 20
MAX_LIMIT = 100
MAX_EXCLUDE = 50
PAGEVIEW = "$pageview"
PATHNAME = "$pathname"
Unit = Literal["person", "session"]


class PathTransition(BaseModel):
    """One transition; a model rather than a dataclass because ``from`` is a Python keyword.
    ``persons`` counts the units (persons, or sessions with ``unit="session"``)."""

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
    end_event: str | None = None
    unit: Unit = "person"


@dataclass(frozen=True)
class PathOptions:
    """What a path is made of (see the module docstring)."""

    start_event: str | None = None
    end_event: str | None = None
    unit: Unit = "person"
    pathnames: bool = False
    exclude: tuple[str, ...] = ()
    cleaning: tuple[CleaningRule, ...] = field(default=())


def paths(
    ctx: ReportContext,
    *,
    start_event: str | None = None,
    end_event: str | None = None,
    steps: int = 5,
    limit: int = 10,
    unit: Unit = "person",
    pathnames: bool = False,
    exclude: Sequence[str] = (),
    cleaning: Sequence[CleaningRule] = (),
) -> PathsResult:
    """Every step ``1..steps`` is listed, with an empty list when no unit got that far."""
    if not 1 <= steps <= MAX_STEPS:
        raise ValidationError("steps", f"must be between 1 and {MAX_STEPS}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be between 1 and {MAX_LIMIT}")
    if start_event is not None and end_event is not None:
        raise ValidationError("end_event", "give start_event or end_event, not both")
    if unit not in ("person", "session"):
        raise ValidationError("unit", "must be 'person' or 'session'")
    if len(exclude) > MAX_EXCLUDE or not all(isinstance(x, str) and x for x in exclude):
        raise ValidationError("exclude", f"at most {MAX_EXCLUDE} non-empty names")
    options = PathOptions(
        start_event, end_event, unit, pathnames, tuple(exclude), tuple(check_rules(list(cleaning)))
    )
    if is_clickhouse():
        from ..engines.clickhouse.paths import transitions

        found = [
            _Transition(int(step), src, dst, n)
            for step, src, dst, n in transitions(ctx, options, steps, limit)
        ]
    else:
        found = _sql_transitions(ctx, options, steps, limit)
    by_step: dict[int, list[PathTransition]] = {i: [] for i in range(1, steps + 1)}
    for row in found:
        by_step[row.step].append(
            PathTransition.model_validate(
                {"from": row.src, "to": row.dst, "persons": ctx.scale(row.n)}
            )
        )
    return PathsResult(
        start_event,
        [PathStep(i, items) for i, items in by_step.items()],
        ctx.sample,
        end_event,
        unit,
    )


@dataclass(frozen=True)
class _Transition:
    step: int
    src: str
    dst: str
    n: int


def _step_name(options: PathOptions) -> ColumnElement[Any]:
    """The name an event shows as in a path: pathname, then the cleaning rules."""
    name: ColumnElement[Any] = events.c.event
    if options.pathnames:
        pathname = func.coalesce(prop_text(events.c.properties, PATHNAME), events.c.event)
        name = case((events.c.event == PAGEVIEW, pathname), else_=events.c.event)
    for rule in options.cleaning:
        name = replace_all(name, rule.compiled, rule.replacement)
    return name


def _sql_transitions(ctx: ReportContext, options: PathOptions, steps: int, limit: int) -> list[Any]:
    """The SQL engine's ``(step, src, dst, n)`` rows."""
    per_session = options.unit == "session"
    query = person_events(ctx.scope_id).where(*ctx.in_range(), *ctx.event_filters())
    if per_session:
        query = query.where(events.c.active.is_(True))
    query = query.add_columns(_step_name(options).label("name"))
    rows = ctx.rows(query)
    order = (rows.c.ts, rows.c.id)
    keys: list[ColumnElement[Any]] = [rows.c.person_id]
    named = select(rows.c.person_id, rows.c.event, rows.c.name, rows.c.ts, rows.c.id)
    if per_session:
        # Sessions are split before exclusions, on the events the session rule sees.
        client = [rows.c.person_id, rows.c.session_id]
        previous_ts = func.lag(rows.c.ts).over(partition_by=client, order_by=order)
        gaps = select(rows, previous_ts.label("previous_ts")).subquery("gaps")
        is_start = case(
            (
                gaps.c.session_id.is_(None)
                & starts_session(gaps.c.ts, gaps.c.previous_ts, session_timeout_us()),
                1,
            ),
            else_=0,
        )
        number = func.sum(is_start).over(
            partition_by=(gaps.c.person_id, gaps.c.session_id),
            order_by=(gaps.c.ts, gaps.c.id),
            rows=(None, 0),
        )
        named = select(
            gaps.c.person_id,
            gaps.c.event,
            gaps.c.name,
            gaps.c.ts,
            gaps.c.id,
            gaps.c.session_id,
            number.label("session_no"),
        )
    if options.exclude:
        kept = named.subquery("named")
        named = select(kept).where(
            not_(kept.c.event.in_(options.exclude)), not_(kept.c.name.in_(options.exclude))
        )
    unit_rows = named.subquery("unit_rows")
    keys = [unit_rows.c.person_id]
    if per_session:
        keys += [unit_rows.c.session_id, unit_rows.c.session_no]
    previous = func.lag(unit_rows.c.name).over(
        partition_by=keys, order_by=(unit_rows.c.ts, unit_rows.c.id)
    )
    marked_rows = select(
        *keys, unit_rows.c.name, unit_rows.c.ts, unit_rows.c.id, previous.label("prev")
    ).subquery("marked")
    mkeys = [marked_rows.c[k.name] for k in keys]
    collapsed = (
        select(
            *mkeys,
            marked_rows.c.name,
            func.row_number()
            .over(partition_by=mkeys, order_by=(marked_rows.c.ts, marked_rows.c.id))
            .label("pos"),
        )
        .where(or_(marked_rows.c.prev.is_(None), marked_rows.c.prev != marked_rows.c.name))
        .subquery("collapsed")
    )
    ckeys = [collapsed.c[k.name] for k in keys]
    # The anchor position per unit as a window over the same rows (a join of the collapsed rows
    # with their own per-unit minimum was a nested loop on SQLite: quadratic in events).
    anchor: ColumnElement[Any] = literal(1, Integer)
    anchor_event = options.end_event if options.end_event is not None else options.start_event
    if anchor_event is not None:
        anchor = func.min(case((collapsed.c.name == anchor_event, collapsed.c.pos))).over(
            partition_by=ckeys
        )
    started = select(collapsed, anchor.label("anchor")).subquery("started")
    skeys = [started.c[k.name] for k in keys]
    # Each kept position with the step before it: positions are consecutive, so the previous
    # row is one step away (one window pass rather than a self-join).
    if options.end_event is None:
        k = started.c.pos - started.c.anchor
        window = (started.c.pos >= started.c.anchor, started.c.pos <= started.c.anchor + steps)
    else:
        k = started.c.anchor - started.c.pos + 1
        window = (started.c.pos >= started.c.anchor - steps, started.c.pos <= started.c.anchor)
    relative = (
        select(
            k.label("k"),
            func.lag(started.c.name).over(partition_by=skeys, order_by=started.c.pos).label("src"),
            started.c.name.label("dst"),
        )
        .where(*window)
        .subquery("relative")
    )
    counted = (
        select(
            relative.c.k.label("step"),
            relative.c.src,
            relative.c.dst,
            func.count().label("n"),
        )
        .where(relative.c.k >= 1, relative.c.k <= steps, relative.c.src.is_not(None))
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
    final = (
        select(ranked.c.step, ranked.c.src, ranked.c.dst, ranked.c.n)
        .where(ranked.c.rank <= limit)
        .order_by(ranked.c.step, ranked.c.rank)
    )
    with report_connection() as connection:
        return list(connection.execute(final))
