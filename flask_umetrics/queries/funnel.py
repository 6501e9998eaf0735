"""Funnels: how many persons go through a sequence of steps within a conversion window.

Semantics (DESIGN.md §5 "Funnel"); docs/funnels-retention.md has the long version.

- A person *enters* with any step-1 event inside ``[date_from, date_to)``. For one entry ``e1``
  the chain ``e1, e2, ..., ek`` has non-decreasing timestamps, each step a distinct event row, and
  ``ek.ts - e1.ts <= window`` (inclusive); later steps may fall after ``date_to``. The person's
  level is the longest chain over all their entries (best attempt); step ``j`` counts the persons
  whose level is at least ``j``.
- ``ordered``: each next step is the earliest eligible event in ``(ts, id)`` order (``ts`` at or
  after the previous step, not an event already in the chain, inside the window). Taking the
  earliest event is optimal, so this is the longest chain, except in one corner: steps that name
  the same event with different filters, matched by events that share one timestamp.
- ``strict``: consecutive steps are consecutive events of the person in ``(ts, id)`` order (events
  with equal timestamps are ordered by their id, i.e. by arrival); any event of the person in
  between (any name, active or not, whatever the report's filters) breaks the chain.
- ``any``: step 1 is the entry; every other step needs its own distinct event inside
  ``[e1.ts, e1.ts + window]``, in any order. The level is 1 + the largest matching of steps to
  events (Hall's theorem: ``|S| - max over step sets A of (|A| - events matching A)``), exact.
  At most ``MAX_ANY_DEFINITIONS`` differently defined steps may share one event name.
- Median seconds from the previous step: for each person, the chain of their earliest entry
  (by ``(ts, id)``) that reaches their level; in ``any`` mode step ``j`` is reached at the
  earliest moment by which ``j`` steps can be matched. The median of an even count is the mean
  of the two middle values.

Everything runs as one SQL statement with CTEs, identical on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.expression import FunctionElement

from ..db.tables import events
from ..errors import ValidationError
from ..state import current_state
from .context import ReportContext
from .filters import PropertyFilter
from .sql import person_events, prop_text

ORDERS: tuple[str, ...] = ("ordered", "strict", "any")
MIN_STEPS = 2
MAX_STEPS = 20
MAX_ANY_DEFINITIONS = 6
MAX_WINDOW_SECONDS = 3650 * 86400
DEFAULT_WINDOW_SECONDS = 14 * 86400
OTHER = "$other"
_MICROS = 1_000_000


@dataclass(frozen=True)
class FunnelStep:
    """One step: an event name and property filters its events must match."""

    event: str
    filters: tuple[PropertyFilter, ...] = ()

    def key(self) -> tuple[str, tuple[str, ...]]:
        """Equal for steps that match exactly the same events."""
        return self.event, tuple(sorted(f.model_dump_json() for f in self.filters))


@dataclass(frozen=True)
class FunnelStepResult:
    event: str
    count: int | float
    conversion_from_start: float
    conversion_from_previous: float
    median_seconds_from_previous: float | None


@dataclass(frozen=True)
class FunnelBreakdown:
    value: str | None
    steps: list[FunnelStepResult]


@dataclass(frozen=True)
class FunnelResult:
    steps: list[FunnelStepResult]
    order: str
    window_seconds: int
    breakdown: str | None = None
    breakdowns: list[FunnelBreakdown] | None = None
    sampled: float | None = None


class _greatest(FunctionElement[int]):
    """The largest of several non-NULL integers (``GREATEST`` / SQLite's scalar ``MAX``)."""

    type = Integer()
    inherit_cache = True


@compiles(_greatest)
def _greatest_default(element: _greatest, compiler: Any, **kw: Any) -> str:
    return f"GREATEST({compiler.process(element.clauses, **kw)})"


@compiles(_greatest, "sqlite")
def _greatest_sqlite(element: _greatest, compiler: Any, **kw: Any) -> str:
    return f"MAX({compiler.process(element.clauses, **kw)})"


def _validate(
    steps: list[FunnelStep], window_seconds: int, order: str, breakdown_limit: int
) -> None:
    if not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise ValidationError("step", f"give between {MIN_STEPS} and {MAX_STEPS} steps")
    for step in steps:
        if not isinstance(step.event, str) or not 0 < len(step.event) <= 200:
            raise ValidationError("step", "each step needs an event name of 1..200 characters")
    if not 0 < window_seconds <= MAX_WINDOW_SECONDS:
        raise ValidationError("window", f"must be between 1 and {MAX_WINDOW_SECONDS} seconds")
    if order not in ORDERS:
        raise ValidationError("order", f"must be one of {', '.join(ORDERS)}")
    if not 1 <= breakdown_limit <= 100:
        raise ValidationError("breakdown_limit", "must be between 1 and 100")
    if order == "any":
        for name, keys in _clusters(steps).items():
            if len(keys) > MAX_ANY_DEFINITIONS:
                raise ValidationError(
                    "step",
                    f"at most {MAX_ANY_DEFINITIONS} differently filtered steps may use "
                    f"'{name}' in order=any",
                )


def _matches(step: FunnelStep, ctx: ReportContext) -> ColumnElement[bool]:
    return and_(
        events.c.event == step.event,
        *(f.condition(events.c.properties) for f in step.filters),
        *ctx.event_filters(),
    )


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _event_rows(
    ctx: ReportContext, window: int, breakdown: str | None, only: ColumnElement[bool] | None
) -> tuple[Select[Any], ColumnElement[Any]]:
    """The person's events that can take part: ``[date_from, date_to + window]``, sampled."""
    group = prop_text(events.c.properties, breakdown) if breakdown else cast(null(), String)
    query = person_events(ctx.scope_id).where(
        events.c.ts >= ctx.from_us, events.c.ts <= ctx.to_us + window
    )
    if only is not None:
        query = query.where(only)
    query = query.where(*ctx.sampled(query.selected_columns.person_id))
    person_id = query.selected_columns.person_id
    return query.with_only_columns(
        person_id, events.c.id, events.c.ts, group.label("bd")
    ), person_id


def _ordered_chains(
    ctx: ReportContext, steps: list[FunnelStep], window: int, breakdown: str | None
) -> CTE:
    """Greedy chains: each next step is the candidate with the smallest ``(ts, id)``."""
    conditions = [_matches(step, ctx) for step in steps]
    rows, person_id = _event_rows(ctx, window, breakdown, or_(*conditions))
    seq = func.row_number().over(partition_by=person_id, order_by=(events.c.ts, events.c.id))
    cand = rows.add_columns(
        seq.label("seq"), *(_flag(c).label(f"m{j}") for j, c in enumerate(conditions, 1))
    ).cte("cand")
    chain = (
        select(
            cand.c.person_id,
            cand.c.id.label("entry_id"),
            cand.c.bd,
            cand.c.ts.label("t1"),
            cand.c.id.label("i1"),
        )
        .where(cand.c.m1 == 1, cand.c.ts < ctx.to_us)
        .cte("chain1")
    )
    for j in range(2, len(steps) + 1):
        x = cand.alias(f"x{j}")
        # Only an earlier step naming the same event can hold the same row.
        distinct = [
            x.c.id != chain.c[f"i{k}"]
            for k in range(1, j)
            if steps[k - 1].event == steps[j - 1].event
        ]
        nearest = (
            select(chain.c.entry_id, func.min(x.c.seq).label("s"))
            .select_from(
                chain.join(
                    x,
                    and_(
                        x.c.person_id == chain.c.person_id,
                        x.c[f"m{j}"] == 1,
                        x.c.ts >= chain.c[f"t{j - 1}"],
                        x.c.ts <= chain.c.t1 + window,
                        *distinct,
                    ),
                )
            )
            .group_by(chain.c.entry_id)
            .subquery(f"n{j}")
        )
        y = cand.alias(f"y{j}")
        chain = (
            select(chain, y.c.ts.label(f"t{j}"), y.c.id.label(f"i{j}"))
            .select_from(
                chain.outerjoin(nearest, nearest.c.entry_id == chain.c.entry_id).outerjoin(
                    y, and_(y.c.person_id == chain.c.person_id, y.c.seq == nearest.c.s)
                )
            )
            .cte(f"chain{j}")
        )
    return _with_level(chain, len(steps))


def _strict_chains(
    ctx: ReportContext, steps: list[FunnelStep], window: int, breakdown: str | None
) -> CTE:
    """Step ``j`` must be the person's very next event after step ``j - 1``."""
    rows, person_id = _event_rows(ctx, window, breakdown, None)
    seq = func.row_number().over(partition_by=person_id, order_by=(events.c.ts, events.c.id))
    numbered = rows.add_columns(
        seq.label("seq"),
        *(_flag(_matches(step, ctx)).label(f"m{j}") for j, step in enumerate(steps, 1)),
    ).cte("numbered")
    entry = numbered.alias("x1")
    joined: Any = entry
    previous = entry
    columns: list[Any] = [
        entry.c.person_id,
        entry.c.id.label("entry_id"),
        entry.c.bd,
        entry.c.ts.label("t1"),
    ]
    for j in range(2, len(steps) + 1):
        x = numbered.alias(f"x{j}")
        joined = joined.outerjoin(
            x,
            and_(
                x.c.person_id == entry.c.person_id,
                x.c.seq == previous.c.seq + 1,
                x.c[f"m{j}"] == 1,
                x.c.ts <= entry.c.ts + window,
            ),
        )
        columns.append(x.c.ts.label(f"t{j}"))
        previous = x
    chain = (
        select(*columns)
        .select_from(joined)
        .where(entry.c.m1 == 1, entry.c.ts < ctx.to_us)
        .cte("chains_raw")
    )
    return _with_level(chain, len(steps))


def _clusters(steps: list[FunnelStep]) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Distinct definitions of steps 2..n, grouped by event name (names never compete)."""
    clusters: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for step in steps[1:]:
        keys = clusters.setdefault(step.event, [])
        if step.key() not in keys:
            keys.append(step.key())
    return clusters


def _any_chains(
    ctx: ReportContext, steps: list[FunnelStep], window: int, breakdown: str | None
) -> CTE:
    """Unordered: for each entry and each moment ``T`` in its window, how many steps can be
    matched to distinct events in ``[e1.ts, T]``; the level is the most at ``e1.ts + window``."""
    definitions = {step.key(): step for step in steps}
    keys = list(definitions)
    conditions = {key: _matches(definitions[key], ctx) for key in keys}
    first = _matches(steps[0], ctx)
    rows, _ = _event_rows(ctx, window, breakdown, or_(*conditions.values()))
    flags = rows.add_columns(
        _flag(first).label("m1"),
        *(_flag(conditions[key]).label(f"f{i}") for i, key in enumerate(keys)),
    ).cte("flags")
    clusters = _clusters(steps)
    multiplicity: dict[tuple[str, tuple[str, ...]], int] = {}
    for step in steps[1:]:
        multiplicity[step.key()] = multiplicity.get(step.key(), 0) + 1
    # Every non-empty set of same-name definitions: its matching events up to each moment.
    subsets: list[tuple[str, tuple[int, ...], int]] = []
    for name, members in clusters.items():
        indexes = [keys.index(key) for key in members]
        for size in range(1, len(indexes) + 1):
            for chosen in combinations(indexes, size):
                steps_in = sum(multiplicity[keys[i]] for i in chosen)
                subsets.append((name, chosen, steps_in))
    cumulative: list[Any] = []
    for s, (_, chosen, _) in enumerate(subsets):
        flag = _flag(or_(*(flags.c[f"f{i}"] == 1 for i in chosen)))
        upto = func.sum(flag).over(partition_by=flags.c.person_id, order_by=flags.c.ts)
        same_ts = func.sum(flag).over(partition_by=(flags.c.person_id, flags.c.ts))
        cumulative += [
            flag.label(f"own{s}"),
            upto.label(f"c{s}"),
            (upto - same_ts).label(f"b{s}"),
        ]
    counted = select(
        flags.c.person_id, flags.c.id, flags.c.ts, flags.c.bd, flags.c.m1, *cumulative
    ).cte("counted")
    e = counted.alias("e")
    x = counted.alias("x")
    matched: list[ColumnElement[Any]] = []
    for name, members in clusters.items():
        size = sum(multiplicity[key] for key in members)
        shortfalls: list[ColumnElement[Any]] = [literal(0, Integer)]
        for s, (cluster, _, steps_in) in enumerate(subsets):
            if cluster == name:
                available = x.c[f"c{s}"] - e.c[f"b{s}"] - e.c[f"own{s}"]
                shortfalls.append(steps_in - available)
        matched.append(size - _greatest(*shortfalls))
    level_at = literal(1, Integer) + sum(matched[1:], matched[0])
    chain = (
        select(
            e.c.person_id,
            e.c.id.label("entry_id"),
            e.c.bd,
            e.c.ts.label("t1"),
            *(
                func.min(case((level_at >= j, x.c.ts))).label(f"t{j}")
                for j in range(2, len(steps) + 1)
            ),
        )
        .select_from(
            e.join(
                x,
                and_(
                    x.c.person_id == e.c.person_id,
                    x.c.ts >= e.c.ts,
                    x.c.ts <= e.c.ts + window,
                ),
            )
        )
        .where(e.c.m1 == 1, e.c.ts < ctx.to_us)
        .group_by(e.c.person_id, e.c.id, e.c.bd, e.c.ts)
        .cte("chains_raw")
    )
    return _with_level(chain, len(steps))


def _with_level(chain: CTE, n: int) -> CTE:
    """One row per entry: ``person_id, entry_id, bd, t1..tn`` and ``level``."""
    reached = [case((chain.c[f"t{j}"].is_not(None), 1), else_=0) for j in range(2, n + 1)]
    level = literal(1, Integer) + sum(reached[1:], reached[0])
    times = [chain.c[f"t{j}"] for j in range(1, n + 1)]
    return select(
        chain.c.person_id, chain.c.entry_id, chain.c.bd, *times, level.label("level")
    ).cte("chains")


def _summary(chains: CTE, n: int, breakdown_limit: int | None) -> Any:
    """Per group (all persons, then each breakdown group) and step: persons reaching it and
    the two middle values of the time from the previous step (sum and how many)."""
    rank = func.row_number().over(
        partition_by=chains.c.person_id,
        order_by=(chains.c.level.desc(), chains.c.t1, chains.c.entry_id),
    )
    ranked = select(chains, rank.label("r")).subquery("ranked")
    best = select(ranked).where(ranked.c.r == 1).cte("best")
    parts = []
    for j in range(1, n + 1):
        delta = cast(null(), BigInteger) if j == 1 else best.c[f"t{j}"] - best.c[f"t{j - 1}"]
        parts.append(
            select(best.c.bd, literal(j, Integer).label("step"), delta.label("delta")).where(
                best.c.level >= j
            )
        )
    reached = union_all(*parts).cte("reached")
    grouped = [
        select(
            literal(0, Integer).label("kind"),
            literal(0, Integer).label("g"),
            cast(null(), String).label("v"),
            reached.c.step,
            reached.c.delta,
        )
    ]
    if breakdown_limit is not None:
        sizes = select(best.c.bd, func.count().label("n")).group_by(best.c.bd).subquery("sizes")
        order = func.row_number().over(order_by=(sizes.c.n.desc(), sizes.c.bd.asc().nulls_last()))
        ranks = select(sizes.c.bd, order.label("rank")).subquery("ranks")
        inside = ranks.c.rank <= breakdown_limit
        grouped.append(
            select(
                literal(1, Integer).label("kind"),
                case((inside, ranks.c.rank), else_=breakdown_limit + 1).label("g"),
                case((inside, ranks.c.bd), else_=literal(OTHER, String)).label("v"),
                reached.c.step,
                reached.c.delta,
            ).select_from(reached.join(ranks, ranks.c.bd.is_not_distinct_from(reached.c.bd)))
        )
    labelled = union_all(*grouped).subquery("labelled")
    cell = (labelled.c.kind, labelled.c.g, labelled.c.step)
    ordered = select(
        labelled,
        func.row_number().over(partition_by=cell, order_by=labelled.c.delta).label("rn"),
        func.count().over(partition_by=cell).label("cnt"),
    ).subquery("ordered")
    middle = and_(2 * ordered.c.rn >= ordered.c.cnt, 2 * ordered.c.rn <= ordered.c.cnt + 2)
    return (
        select(
            ordered.c.kind,
            ordered.c.g,
            ordered.c.v,
            ordered.c.step,
            func.count().label("n"),
            func.sum(case((middle, ordered.c.delta))).label("mid_sum"),
            func.sum(case((middle, 1), else_=0)).label("mid_n"),
        )
        .group_by(ordered.c.kind, ordered.c.g, ordered.c.v, ordered.c.step)
        .order_by(ordered.c.kind, ordered.c.g, ordered.c.step)
    )


def _step_results(
    ctx: ReportContext, steps: list[FunnelStep], cells: dict[int, tuple[int, float | None]]
) -> list[FunnelStepResult]:
    counts = [cells.get(j, (0, None))[0] for j in range(1, len(steps) + 1)]
    results = []
    for j, step in enumerate(steps, 1):
        count = counts[j - 1]
        previous = counts[j - 2] if j > 1 else count
        results.append(
            FunnelStepResult(
                event=step.event,
                count=ctx.scale(count),
                conversion_from_start=count / counts[0] if counts[0] else 0.0,
                conversion_from_previous=count / previous if previous else 0.0,
                median_seconds_from_previous=None if j == 1 else cells.get(j, (0, None))[1],
            )
        )
    return results


def funnel(
    ctx: ReportContext,
    steps: list[FunnelStep],
    *,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
    order: str = "ordered",
    breakdown: str | None = None,
    breakdown_limit: int = 10,
) -> FunnelResult:
    """Persons reaching each step, conversions, and median time from the previous step; with
    ``breakdown``, also per value of that property on the entry event of each person's best
    chain (top ``breakdown_limit`` values by step-1 persons, then ``$other``)."""
    _validate(steps, window_seconds, order, breakdown_limit)
    window = window_seconds * _MICROS
    build = {"ordered": _ordered_chains, "strict": _strict_chains, "any": _any_chains}[order]
    chains = build(ctx, steps, window, breakdown)
    query = _summary(chains, len(steps), breakdown_limit if breakdown is not None else None)
    groups: dict[tuple[int, int], tuple[str | None, dict[int, tuple[int, float | None]]]] = {}
    with current_state().engine.connect() as connection:
        for row in connection.execute(query):
            median = None
            if row.mid_sum is not None and row.mid_n:
                median = int(row.mid_sum) / int(row.mid_n) / _MICROS
            _, cells = groups.setdefault((row.kind, row.g), (row.v, {}))
            cells[row.step] = (int(row.n), median)
    overall = _step_results(ctx, steps, groups.get((0, 0), (None, {}))[1])
    breakdowns = None
    if breakdown is not None:
        breakdowns = [
            FunnelBreakdown(value, _step_results(ctx, steps, cells))
            for (kind, _), (value, cells) in sorted(groups.items())
            if kind == 1
        ]
    return FunnelResult(overall, order, window_seconds, breakdown, breakdowns, ctx.sample)
