"""Funnels: how many persons go through a sequence of steps within a conversion window.

Semantics: docs/funnels-retention.md has the long version.

- A person *enters* with any step-1 event inside ``[date_from, date_to)``. For one entry ``e1``
  the chain ``e1, e2, ..., ek`` has non-decreasing timestamps, each step a distinct event row, and
  ``ek.ts - e1.ts <= window`` (inclusive); later steps may fall after ``date_to``. The person's
  level is the longest chain over all their entries (best attempt); step ``j`` counts the persons
  whose level is at least ``j``.
- ``ordered``: each next step is the earliest eligible event (timestamp at or after the previous
  step, not an event already in the chain, inside the window). Taking the earliest is optimal, so
  this is the longest chain, except in one corner: steps naming the same event with different
  filters, matched by events sharing one timestamp.
- ``strict``: consecutive steps are consecutive events of the person in ``(ts, id)`` order (equal
  timestamps are ordered by event id, i.e. arrival); any event of the person in between (any name,
  active or not, whatever the report's filters) breaks the chain.
- ``any``: step 1 is the entry; every other step needs its own distinct event inside
  ``[e1.ts, e1.ts + window]``, in any order. The level is 1 + the largest matching of steps to
  events (exact, through Hall's condition). At most ``MAX_ANY_DEFINITIONS`` differently defined
  steps may share one event name.
- Median seconds from the previous step: for each person, the chain of their earliest entry
  (by ``(ts, id)``) that reaches their level; in ``any`` mode step ``j`` is reached at the first
  moment by which ``j`` steps can be matched. The median of an even count is the mean of the two
  middle values.

How the SQL stays fast on both databases: there are no joins between derived tables (SQLite
cannot index those reliably). Each person's events form one stream ordered by ``(ts, id)``;
``strict`` reads ahead with ``LEAD``; ``ordered`` and ``any`` find "the q-th matching event at or
after time T" with a rank lookup: the probes are unioned with the ranked events and a running
``MAX`` over ``(rank, kind)`` hands each probe the event of its rank.
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
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, Select, Subquery
from sqlalchemy.sql.expression import FunctionElement

from ..db.tables import events
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from .connection import report_connection
from .context import ReportContext
from .filters import PropertyFilter
from .persons import PersonSource
from .sql import OTHER, person_events, prop_text

ORDERS: tuple[str, ...] = ("ordered", "strict", "any")
MIN_STEPS = 2
MAX_STEPS = 20
MAX_ANY_DEFINITIONS = 6
MAX_EXCLUSIONS = 10
MAX_WINDOW_SECONDS = 3650 * 86400
DEFAULT_WINDOW_SECONDS = 14 * 86400
_MICROS = 1_000_000
_NEVER = 2**62  # a time after every event: "not found"

Key = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class FunnelStep:
    """One step: an event name and property filters its events must match."""

    event: str
    filters: tuple[PropertyFilter, ...] = ()

    def key(self) -> Key:
        """Equal for steps that match exactly the same events."""
        return self.event, tuple(sorted(f.model_dump_json() for f in self.filters))


@dataclass(frozen=True)
class FunnelExclusion:
    """An event that drops an attempt when it happens between two of its steps.

    ``from_step`` and ``to_step`` are 0-based step indexes (PostHog's): ``0, 1`` means between
    the first and the second step."""

    event: str
    filters: tuple[PropertyFilter, ...] = ()
    from_step: int = 0
    to_step: int = 1

    def matcher(self) -> FunnelStep:
        return FunnelStep(self.event, self.filters)


ATTRIBUTIONS: tuple[str, ...] = ("entry", "first_touch", "last_touch", "step")


@dataclass(frozen=True)
class Attribution:
    """Which event's value of the breakdown property a person is counted under.

    ``entry``: the step-1 event of their chosen attempt. ``first_touch`` / ``last_touch``: the
    first / last non-missing value over their events matching any step (and the report's
    filters) in ``[date_from, date_to + window]``, in ``(ts, id)`` order. ``step``: the event of
    step ``step`` (0-based) of their chosen attempt; missing when it did not reach that step."""

    kind: str = "entry"
    step: int = 0


ENTRY = Attribution()


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
    exclusions: list[FunnelExclusion] | None = None
    breakdown_attribution: str | None = None
    breakdown_attribution_step: int | None = None


class _greatest(FunctionElement[int]):
    """The largest of several non-NULL integers (``GREATEST`` / SQLite's scalar ``MAX``)."""

    type = BigInteger()
    inherit_cache = True


@compiles(_greatest)
def _greatest_default(element: _greatest, compiler: Any, **kw: Any) -> str:
    return f"GREATEST({compiler.process(element.clauses, **kw)})"


@compiles(_greatest, "sqlite")
def _greatest_sqlite(element: _greatest, compiler: Any, **kw: Any) -> str:
    return f"MAX({compiler.process(element.clauses, **kw)})"


def _validate_exclusions(
    steps: list[FunnelStep], exclusions: list[FunnelExclusion], order: str
) -> None:
    """PostHog's rules: a range inside the funnel, ``from < to``; no exclusion matching every
    event of a step it spans; in ``any`` order only the whole funnel (``0`` to the last step)."""
    if len(exclusions) > MAX_EXCLUSIONS:
        raise ValidationError("exclude", f"give at most {MAX_EXCLUSIONS} exclusions")
    last = len(steps) - 1
    for x in exclusions:
        if not isinstance(x.event, str) or not 0 < len(x.event) <= 200:
            raise ValidationError(
                "exclude", "each exclusion needs an event name of 1..200 characters"
            )
        if not 0 <= x.from_step < x.to_step <= last:
            raise ValidationError(
                "exclude", f"from_step and to_step must satisfy 0 <= from_step < to_step <= {last}"
            )
        if order == "any" and (x.from_step, x.to_step) != (0, last):
            raise ValidationError(
                "exclude",
                f"in order=any an exclusion spans the whole funnel: from_step 0, to_step {last}",
            )
        mine = {f.model_dump_json() for f in x.filters}
        for step in steps[x.from_step : x.to_step + 1]:
            if step.event == x.event and mine <= {f.model_dump_json() for f in step.filters}:
                raise ValidationError(
                    "exclude", f"'{x.event}' would exclude the events of a step it spans"
                )


def _attribution(
    steps: list[FunnelStep], order: str, breakdown: str | None, kind: str, step: int | None
) -> Attribution:
    """The validated :class:`Attribution`: ``step`` (0-based) only with ``kind="step"``, which
    ``any`` order has no use for (its steps have no order); all but ``entry`` need a breakdown."""
    if kind not in ATTRIBUTIONS:
        raise ValidationError("breakdown_attribution", f"must be one of {', '.join(ATTRIBUTIONS)}")
    if kind != "entry" and breakdown is None:
        raise ValidationError("breakdown_attribution", "needs a breakdown")
    if kind != "step":
        if step is not None:
            raise ValidationError(
                "breakdown_attribution_step", "only with breakdown_attribution=step"
            )
        return Attribution(kind)
    if order == "any":
        raise ValidationError("breakdown_attribution", "step is not available in order=any")
    if step is None or not 0 <= step < len(steps):
        raise ValidationError(
            "breakdown_attribution_step", f"give a 0-based step between 0 and {len(steps) - 1}"
        )
    return Attribution(kind, step)


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
        for name, members in _clusters(steps).items():
            if len(members) > MAX_ANY_DEFINITIONS:
                raise ValidationError(
                    "step",
                    f"at most {MAX_ANY_DEFINITIONS} differently filtered steps may use "
                    f"'{name}' in order=any",
                )


# --- shared building blocks ---------------------------------------------------------------


def _definitions(steps: list[FunnelStep]) -> tuple[list[FunnelStep], list[int]]:
    """The distinct step definitions, and the definition index of each step."""
    keys: list[Key] = []
    unique: list[FunnelStep] = []
    of: list[int] = []
    for step in steps:
        if step.key() not in keys:
            keys.append(step.key())
            unique.append(step)
        of.append(keys.index(step.key()))
    return unique, of


def _clusters(steps: list[FunnelStep]) -> dict[str, dict[int, int]]:
    """Steps 2..n by event name: definition index -> how many steps use it (names never
    compete for the same event, so each name is matched on its own)."""
    _, of = _definitions(steps)
    clusters: dict[str, dict[int, int]] = {}
    for step, d in zip(steps[1:], of[1:], strict=True):
        members = clusters.setdefault(step.event, {})
        members[d] = members.get(d, 0) + 1
    return clusters


def _matches(step: FunnelStep, ctx: ReportContext) -> ColumnElement[bool]:
    return and_(
        events.c.event == step.event,
        *(f.condition(events.c.properties) for f in step.filters),
        *ctx.event_filters(),
    )


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _int(value: int) -> ColumnElement[int]:
    """An integer written into the SQL (window offsets must not be typeless parameters)."""
    return literal_column(str(value), Integer)


def _none(kind: Any = BigInteger) -> ColumnElement[Any]:
    return cast(null(), kind)


def _candidates(
    ctx: ReportContext,
    definitions: list[FunnelStep],
    window: int,
    breakdown: str | None,
    every_event: bool = False,
    attribution: Attribution = ENTRY,
) -> CTE:
    """Events in ``[date_from, date_to + window]`` (sampled) with a 0/1 flag ``f<d>`` per
    definition; only events matching one unless ``every_event``. ``bd`` is the event's value
    of ``breakdown``, or with first/last-touch attribution the person's."""
    conditions = [_matches(d, ctx) for d in definitions]
    group = prop_text(events.c.properties, breakdown) if breakdown else _none(String)
    query = person_events(ctx.scope_id).where(
        events.c.ts >= ctx.from_us, events.c.ts <= ctx.to_us + window
    )
    if not every_event:
        query = query.where(or_(*conditions))
    query = query.where(*ctx.sampled(query.selected_columns.person_id))
    if breakdown and attribution.kind in {"first_touch", "last_touch"}:
        value = case((or_(*conditions), group))
        last = attribution.kind == "last_touch"
        group = func.first_value(value, type_=String).over(
            partition_by=query.selected_columns.person_id,
            order_by=(
                case((value.is_(None), 1), else_=0),
                events.c.ts.desc() if last else events.c.ts,
                events.c.id.desc() if last else events.c.id,
            ),
        )
    return query.with_only_columns(
        query.selected_columns.person_id,
        events.c.id,
        events.c.ts,
        group.label("bd"),
        *(_flag(c).label(f"f{d}") for d, c in enumerate(conditions)),
    ).cte("cand")


def _ranks(cand: Any, flag: ColumnElement[int], name: str) -> list[ColumnElement[Any]]:
    """For events with ``flag``: ``rank<name>``, their 1-based position among the person's
    flagged events in ``(ts, id)`` order; and for every event ``lt<name>``, how many flagged
    events of the person come strictly earlier in time."""
    person = cand.c.person_id
    upto = func.sum(flag).over(partition_by=person, order_by=cand.c.ts, range_=(None, 0))
    same_time = func.sum(flag).over(partition_by=(person, cand.c.ts))
    rank = func.sum(flag).over(partition_by=person, order_by=(cand.c.ts, cand.c.id), rows=(None, 0))
    return [rank.label(f"rank{name}"), (upto - same_time).label(f"lt{name}")]


def _lookup(
    listed: Select[Any], probes: Select[Any], carried: list[str], fetched: list[str], name: str
) -> Subquery:
    """Hand each probe (``person_id``, ``key``, ``carried`` columns) the listed row (``person_id``,
    ``key`` = its rank, ``fetched`` columns, each non-decreasing in rank) whose rank equals
    ``key``: ``hit`` is 1 when there is one, and ``got_<c>`` holds its ``fetched`` values."""
    have, ask = listed.selected_columns, probes.selected_columns
    rows = union_all(
        listed.with_only_columns(
            have.person_id,
            have.key,
            _int(0).label("kind"),
            *(have[c] for c in fetched),
            *(_none(ask[c].type).label(c) for c in carried),
        ),
        probes.with_only_columns(
            ask.person_id,
            ask.key,
            _int(1).label("kind"),
            *(_none(have[c].type).label(c) for c in fetched),
            *(ask[c] for c in carried),
        ),
    ).subquery(f"{name}_rows")
    running: dict[str, Any] = {
        "partition_by": rows.c.person_id,
        "order_by": (rows.c.key, rows.c.kind),
        "rows": (None, 0),
    }
    last_rank = func.max(case((rows.c.kind == 0, rows.c.key))).over(**running)
    looked = select(
        rows.c.person_id,
        rows.c.key,
        rows.c.kind,
        *(rows.c[c] for c in carried),
        case((last_rank == rows.c.key, 1), else_=0).label("hit"),
        *(func.max(rows.c[c]).over(**running).label(f"got_{c}") for c in fetched),
    ).subquery(f"{name}_looked")
    return looked


# --- ordered ------------------------------------------------------------------------------


def _ordered_chains(
    ctx: ReportContext,
    steps: list[FunnelStep],
    window: int,
    breakdown: str | None,
    attribution: Attribution = ENTRY,
) -> CTE:
    """Step by step: the next step is the ``(u + 1)``-th event of its definition at or after the
    previous step's time, ``u`` being the chain events at that time it would reuse."""
    definitions, of = _definitions(steps)
    n = len(steps)
    cand = _candidates(ctx, definitions, window, breakdown, attribution=attribution)
    # Step attribution: the rank of the chain's event of that step, to fetch its value at the end.
    kept_key = f"k{attribution.step + 1}" if attribution.kind == "step" and attribution.step else ""
    ranked = select(
        cand,
        *(c for d in range(len(definitions)) for c in _ranks(cand, cand.c[f"f{d}"], str(d))),
    ).cte("ranked")
    # (k, m): does chain event k also match step m? Only unknown when both name the same event
    # with different filters; then the flag is looked up with event k.
    asked = {
        (k, m)
        for m in range(2, n + 1)
        for k in range(1, m)
        if steps[k - 1].event == steps[m - 1].event and of[k - 1] != of[m - 1]
    }
    chain = (
        select(
            ranked.c.person_id,
            ranked.c.id.label("entry_id"),
            ranked.c.bd,
            ranked.c.ts.label("t1"),
            ranked.c[f"lt{of[1]}"].label("cl"),
            *(ranked.c[f"f{of[m - 1]}"].label(f"fl1_{m}") for k, m in sorted(asked) if k == 1),
        )
        .where(ranked.c[f"f{of[0]}"] == 1, ranked.c.ts < ctx.to_us)
        .cte("chain1")
    )
    for s in range(2, n + 1):
        d = of[s - 1]
        previous = chain.c[f"t{s - 1}"]
        reused: list[ColumnElement[int]] = []
        for k in range(1, s):
            if steps[k - 1].event != steps[s - 1].event:
                continue
            checks = [] if of[k - 1] == d else [chain.c[f"fl{k}_{s}"] == 1]
            if k < s - 1:
                checks.append(chain.c[f"t{k}"] == previous)
            reused.append(_flag(and_(*checks)) if checks else _int(1))
        key = chain.c.cl + 1
        for term in reused:
            key = key + term
        times = [f"t{k}" for k in range(1, s)]
        flags_kept = [f"fl{k}_{m}" for k, m in sorted(asked) if k < s and m > s]
        flags_new = [m for k, m in sorted(asked) if k == s]
        carried = ["entry_id", "bd", *times, *flags_kept]
        if kept_key and s > attribution.step + 1:
            carried.append(kept_key)
        listed = select(
            ranked.c.person_id,
            ranked.c[f"rank{d}"].label("key"),
            ranked.c.ts.label("ts"),
            *([ranked.c[f"lt{of[s]}"].label("next")] if s < n else []),
            *(
                case((ranked.c[f"f{of[m - 1]}"] == 1, ranked.c[f"rank{d}"])).label(f"fr{m}")
                for m in flags_new
            ),
        ).where(ranked.c[f"f{d}"] == 1)
        fetched = ["ts", *(["next"] if s < n else []), *(f"fr{m}" for m in flags_new)]
        probes = select(
            chain.c.person_id,
            key.label("key"),
            chain.c.entry_id,
            cast(chain.c.bd, String).label("bd"),
            *(chain.c[c] for c in times),
            *(chain.c[c] for c in flags_kept),
            *([chain.c[kept_key]] if kept_key and s > attribution.step + 1 else []),
        )
        looked = _lookup(listed, probes, carried, fetched, f"s{s}")
        found = and_(looked.c.hit == 1, looked.c.got_ts <= looked.c.t1 + window)
        chain = (
            select(
                looked.c.person_id,
                *(looked.c[c] for c in ["entry_id", "bd", *times]),
                case((found, looked.c.got_ts)).label(f"t{s}"),
                # A chain that stopped gets no key, so it never finds a later step.
                *([case((found, looked.c.got_next)).label("cl")] if s < n else []),
                *(looked.c[c] for c in flags_kept),
                *([looked.c[kept_key]] if kept_key and s > attribution.step + 1 else []),
                *([case((found, looked.c.key)).label(kept_key)] if kept_key == f"k{s}" else []),
                *(
                    _flag(looked.c[f"got_fr{m}"] == looked.c.key).label(f"fl{s}_{m}")
                    for m in flags_new
                ),
            )
            .where(looked.c.kind == 1)
            .cte(f"chain{s}")
        )
    if kept_key:
        chain = _value_of_ranked(ranked, chain, of[attribution.step], kept_key, n)
    return _with_level(chain, n)


def _value_of_ranked(ranked: CTE, chain: CTE, d: int, key: str, n: int) -> CTE:
    """``chain`` with ``bd`` replaced by the value of the person's definition-``d`` event whose
    rank is in column ``key`` (missing when ``key`` is): the events and the chains in one
    stream, partitioned by person and rank, so each chain row meets its one event."""
    times = [f"t{s}" for s in range(1, n + 1)]
    rows = union_all(
        select(
            ranked.c.person_id,
            ranked.c[f"rank{d}"].label("key"),
            _int(0).label("kind"),
            ranked.c.bd,
            _none().label("entry_id"),
            *(_none().label(t) for t in times),
        ).where(ranked.c[f"f{d}"] == 1),
        select(
            chain.c.person_id,
            chain.c[key].label("key"),
            _int(1).label("kind"),
            _none(String).label("bd"),
            chain.c.entry_id,
            *(chain.c[t] for t in times),
        ),
    ).subquery("valued_rows")
    valued = select(
        rows.c.person_id,
        rows.c.kind,
        rows.c.entry_id,
        func.max(rows.c.bd).over(partition_by=(rows.c.person_id, rows.c.key)).label("bd"),
        *(rows.c[t] for t in times),
    ).subquery("valued")
    return (
        select(valued.c.person_id, valued.c.entry_id, valued.c.bd, *(valued.c[t] for t in times))
        .where(valued.c.kind == 1)
        .cte("chains_valued")
    )


# --- strict -------------------------------------------------------------------------------


def _strict_chains(
    ctx: ReportContext,
    steps: list[FunnelStep],
    window: int,
    breakdown: str | None,
    attribution: Attribution = ENTRY,
) -> CTE:
    """Step ``j`` is the event ``j - 1`` places after the entry in the person's stream."""
    definitions, of = _definitions(steps)
    n = len(steps)
    cand = _candidates(ctx, definitions, window, breakdown, True, attribution)
    step = attribution.step + 1 if attribution.kind == "step" else 1
    stream: dict[str, Any] = {
        "partition_by": cand.c.person_id,
        "order_by": (cand.c.ts, cand.c.id),
    }
    ahead = select(
        cand.c.person_id,
        cand.c.id,
        cand.c.bd,
        cand.c.ts,
        cand.c[f"f{of[0]}"].label("entry"),
        *(
            c
            for s in range(2, n + 1)
            for c in (
                func.lead(cand.c[f"f{of[s - 1]}"], _int(s - 1)).over(**stream).label(f"m{s}"),
                func.lead(cand.c.ts, _int(s - 1)).over(**stream).label(f"a{s}"),
            )
        ),
        *([func.lead(cand.c.bd, _int(step - 1)).over(**stream).label("bd_at")] if step > 1 else []),
    ).subquery("ahead")
    fits: list[ColumnElement[bool]] = []
    times = []
    reached: dict[int, ColumnElement[bool]] = {}
    for s in range(2, n + 1):
        fits.append(
            and_(ahead.c[f"m{s}"] == 1, ahead.c[f"a{s}"] <= ahead.c.ts + window),
        )
        reached[s] = and_(*fits)
        times.append(case((reached[s], ahead.c[f"a{s}"])).label(f"t{s}"))
    chain = (
        select(
            ahead.c.person_id,
            ahead.c.id.label("entry_id"),
            case((reached[step], ahead.c.bd_at)).label("bd") if step > 1 else ahead.c.bd,
            ahead.c.ts.label("t1"),
            *times,
        )
        .where(ahead.c.entry == 1, ahead.c.ts < ctx.to_us)
        .cte("chains_raw")
    )
    return _with_level(chain, n)


# --- any order ----------------------------------------------------------------------------


def _any_chains(
    ctx: ReportContext,
    steps: list[FunnelStep],
    window: int,
    breakdown: str | None,
    attribution: Attribution = ENTRY,
) -> CTE:
    """Per event name with steps ``S`` (definitions and multiplicities), ``r`` of them are
    matched by time ``T`` when every set ``A`` of its definitions has at least
    ``|A| - |S| + r`` events matching ``A`` in ``[e1.ts, T]`` besides ``e1`` (Hall). So the
    moment of the ``r``-th match is the latest, over ``A``, of the time of such an event."""
    definitions, of = _definitions(steps)
    n = len(steps)
    cand = _candidates(ctx, definitions, window, breakdown, attribution=attribution)
    subsets: list[tuple[str, tuple[int, ...], int, int]] = []  # name, definitions, |A|, |S|
    for name, members in _clusters(steps).items():
        size = sum(members.values())
        for count in range(1, len(members) + 1):
            for chosen in combinations(sorted(members), count):
                subsets.append((name, chosen, sum(members[d] for d in chosen), size))
    columns: list[ColumnElement[Any]] = []
    for a, (_, chosen, _, _) in enumerate(subsets):
        flag = _flag(or_(*(cand.c[f"f{d}"] == 1 for d in chosen)))
        columns += [flag.label(f"own{a}"), *_ranks(cand, flag, str(a))]
    ranked = select(cand, *columns).cte("ranked")
    entry = and_(ranked.c[f"f{of[0]}"] == 1, ranked.c.ts < ctx.to_us)
    found_parts = []
    for a, (_, _, steps_in, size) in enumerate(subsets):
        wanted = range(max(1, steps_in - size + 1), steps_in + 1)
        # The q-th A-event at or after e1.ts, e1 itself left out, has the time of the
        # (lt + own + q)-th A-event of the person.
        probes = union_all(
            *(
                select(
                    ranked.c.person_id,
                    (ranked.c[f"lt{a}"] + ranked.c[f"own{a}"] + q).label("key"),
                    ranked.c.id.label("entry_id"),
                    ranked.c.bd,
                    ranked.c.ts.label("t1"),
                    _int(q).label("q"),
                ).where(entry)
                for q in wanted
            )
        ).subquery(f"p{a}")
        listed = select(
            ranked.c.person_id, ranked.c[f"rank{a}"].label("key"), ranked.c.ts.label("ts")
        ).where(ranked.c[f"own{a}"] == 1)
        looked = _lookup(listed, select(probes), ["entry_id", "bd", "t1", "q"], ["ts"], f"a{a}")
        inside = and_(looked.c.hit == 1, looked.c.got_ts <= looked.c.t1 + window)
        found_parts.append(
            select(
                looked.c.person_id,
                looked.c.entry_id,
                looked.c.bd,
                looked.c.t1,
                _int(a).label("a"),
                looked.c.q,
                case((inside, looked.c.got_ts)).label("at"),
            ).where(looked.c.kind == 1)
        )
    found = union_all(*found_parts).subquery("found")
    occurrences = {
        (a, q): func.max(case((and_(found.c.a == a, found.c.q == q), found.c.at))).label(
            f"o{a}_{q}"
        )
        for a, (_, _, steps_in, size) in enumerate(subsets)
        for q in range(max(1, steps_in - size + 1), steps_in + 1)
    }
    per_entry = (
        select(found.c.person_id, found.c.entry_id, found.c.bd, found.c.t1, *occurrences.values())
        .group_by(found.c.person_id, found.c.entry_id, found.c.bd, found.c.t1)
        .cte("per_entry")
    )
    moments = []
    for name, members in _clusters(steps).items():
        size = sum(members.values())
        for r in range(1, size + 1):
            needs = [
                func.coalesce(per_entry.c[f"o{a}_{steps_in - size + r}"], _NEVER)
                for a, (cluster, _, steps_in, _) in enumerate(subsets)
                if cluster == name and steps_in - size + r >= 1
            ]
            moment = needs[0] if len(needs) == 1 else _greatest(*needs)
            moments.append(select(per_entry.c.entry_id, moment.label("at")).where(moment < _NEVER))
    matched = union_all(*moments).subquery("matched")
    numbered = select(
        matched.c.entry_id,
        matched.c.at,
        func.row_number().over(partition_by=matched.c.entry_id, order_by=matched.c.at).label("rn"),
    ).subquery("numbered")
    rows = union_all(
        select(
            per_entry.c.person_id,
            per_entry.c.entry_id,
            per_entry.c.bd,
            per_entry.c.t1,
            _none().label("at"),
            _int(0).label("rn"),
        ),
        select(
            _none().label("person_id"),
            numbered.c.entry_id,
            _none(String).label("bd"),
            _none().label("t1"),
            numbered.c.at,
            numbered.c.rn,
        ),
    ).subquery("moments")
    chain = (
        select(
            func.max(rows.c.person_id).label("person_id"),
            rows.c.entry_id,
            func.max(rows.c.bd).label("bd"),
            func.max(rows.c.t1).label("t1"),
            *(
                func.max(case((rows.c.rn == s - 1, rows.c.at))).label(f"t{s}")
                for s in range(2, n + 1)
            ),
        )
        .group_by(rows.c.entry_id)
        .cte("chains_raw")
    )
    return _with_level(chain, n)


# --- from chains to the answer ------------------------------------------------------------


def _with_level(chain: CTE, n: int) -> CTE:
    """One row per entry: ``person_id, entry_id, bd, t1..tn`` and ``level``."""
    level: ColumnElement[int] = _int(1)
    for s in range(2, n + 1):
        level = level + _flag(chain.c[f"t{s}"].is_not(None))
    times = [chain.c[f"t{s}"] for s in range(1, n + 1)]
    return select(
        chain.c.person_id, chain.c.entry_id, chain.c.bd, *times, level.label("level")
    ).cte("chains")


def _drop_excluded(
    ctx: ReportContext, chains: CTE, exclusions: list[FunnelExclusion], n: int, window: int
) -> CTE:
    """The attempts (rows of ``chains``) with no excluded event strictly after their
    ``from_step`` event and before their ``to_step`` event (or, when they never reached it,
    up to the end of their window).

    Without a join: the excluded events and two probes per attempt and exclusion (the two ends
    of the interval, carrying the attempt's columns) form one stream per person in ``(ts,
    kind)`` order; a running count of excluded events hands each probe how many came before
    it, and an attempt is dropped when its upper probe saw more than its lower probe."""
    if not exclusions:
        return chains
    matches = [_matches(x.matcher(), ctx) for x in exclusions]
    source = person_events(ctx.scope_id).where(
        events.c.ts >= ctx.from_us, events.c.ts <= ctx.to_us + window, or_(*matches)
    )
    carried = ["entry_id", "bd", *(f"t{s}" for s in range(1, n + 1)), "level"]
    flags = [f"x{j}" for j in range(len(exclusions))]
    have = source.selected_columns
    parts: list[Select[Any]] = [
        source.with_only_columns(
            have.person_id,
            events.c.ts,
            _int(0).label("kind"),
            _int(0).label("side"),
            _none().label("j"),
            *(_none(String if c == "bd" else BigInteger).label(c) for c in carried),
            *(_flag(m).label(flag) for m, flag in zip(matches, flags, strict=True)),
        )
    ]
    zeros = [_int(0).label(flag) for flag in flags]
    for j, x in enumerate(exclusions):
        start, stop = chains.c[f"t{x.from_step + 1}"], chains.c[f"t{x.to_step + 1}"]
        ends = [
            # Events at or before the from-step's time: counted before this probe.
            (func.coalesce(start, chains.c.t1), _int(1), -1),
            # Before the to-step's time (strictly), else up to the window's end (inclusive).
            (
                func.coalesce(stop, chains.c.t1 + window),
                case((stop.is_(None), _int(1)), else_=_int(-1)),
                1,
            ),
        ]
        for at, kind, side in ends:
            parts.append(
                select(
                    chains.c.person_id,
                    at.label("ts"),
                    kind.label("kind"),
                    # An attempt that never reached the from-step is not at risk.
                    case((start.is_(None), _int(0)), else_=_int(side)).label("side"),
                    _int(j).label("j"),
                    *(chains.c[c] for c in carried),
                    *zeros,
                )
            )
    rows = union_all(*parts).subquery("x_rows")
    running: dict[str, Any] = {
        "partition_by": rows.c.person_id,
        "order_by": (rows.c.ts, rows.c.kind),
        "rows": (None, 0),
    }
    seen: ColumnElement[Any] = _int(0)
    for j, flag in enumerate(flags):
        seen = seen + case((rows.c.j == j, func.sum(rows.c[flag]).over(**running)), else_=0)
    windowed = select(rows, (rows.c.side * seen).label("d")).subquery("x_seen")
    counted = select(windowed).where(windowed.c.kind != 0).subquery("x_counted")
    # "upper - lower" per exclusion (negative when the two steps share one time: no room).
    kept = (
        select(
            func.max(counted.c.person_id).label("person_id"),
            counted.c.entry_id,
            *(func.max(counted.c[c]).label(c) for c in carried if c != "entry_id"),
        )
        .group_by(counted.c.entry_id)
        .having(
            and_(
                *(
                    func.sum(case((counted.c.j == j, counted.c.d), else_=0)) <= 0
                    for j in range(len(exclusions))
                )
            )
        )
    )
    return kept.cte("kept_chains")


def _best_attempts(chains: CTE) -> Subquery:
    """Each person's chosen attempt: the longest chain, then the earliest entry."""
    rank = func.row_number().over(
        partition_by=chains.c.person_id,
        order_by=(chains.c.level.desc(), chains.c.t1, chains.c.entry_id),
    )
    ranked = select(chains, rank.label("r")).subquery("ranked")
    return select(ranked).where(ranked.c.r == 1).subquery("best_attempts")


def _ranked_attempts(chains: CTE) -> CTE:
    """:func:`_best_attempts` with ``grank``, the rank of its breakdown group: values by
    persons at step 1, ties by value, the missing value last (a group ranked past the
    report's ``breakdown_limit`` is ``$other``)."""
    attempts = _best_attempts(chains)
    chosen = select(attempts, func.count().over(partition_by=attempts.c.bd).label("bd_n"))
    best_rows = chosen.subquery("chosen")
    group_rank = func.dense_rank().over(
        order_by=(best_rows.c.bd_n.desc(), best_rows.c.bd.asc().nulls_last())
    )
    return select(best_rows, group_rank.label("grank")).cte("best")


def _summary(chains: CTE, n: int, breakdown_limit: int | None) -> Select[Any]:
    """Per group (all persons, then each breakdown group) and step: persons reaching it and
    the two middle values of the time from the previous step (their sum and how many)."""
    best = _ranked_attempts(chains)
    parts = []
    for s in range(1, n + 1):
        delta = _none() if s == 1 else best.c[f"t{s}"] - best.c[f"t{s - 1}"]
        parts.append(
            select(best.c.bd, best.c.grank, _int(s).label("step"), delta.label("delta")).where(
                best.c.level >= s
            )
        )
    reached = union_all(*parts).cte("reached")
    grouped = [
        select(
            _int(0).label("kind"),
            _int(0).label("g"),
            _none(String).label("v"),
            reached.c.step,
            reached.c.delta,
        )
    ]
    if breakdown_limit is not None:
        inside = reached.c.grank <= breakdown_limit
        grouped.append(
            select(
                _int(1).label("kind"),
                case((inside, reached.c.grank), else_=breakdown_limit + 1).label("g"),
                case((inside, reached.c.bd), else_=literal(OTHER, String)).label("v"),
                reached.c.step,
                reached.c.delta,
            )
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
            func.sum(_flag(middle)).label("mid_n"),
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


def _chains(
    ctx: ReportContext,
    steps: list[FunnelStep],
    window: int,
    order: str,
    breakdown: str | None,
    exclusions: list[FunnelExclusion],
    attribution: Attribution = ENTRY,
) -> CTE:
    """Every attempt that survives the exclusions: ``person_id, entry_id, bd, t1..tn, level``."""
    build = {"ordered": _ordered_chains, "strict": _strict_chains, "any": _any_chains}[order]
    chains = build(ctx, steps, window, breakdown, attribution)
    return _drop_excluded(ctx, chains, exclusions, len(steps), window)


def _summary_rows(
    ctx: ReportContext,
    steps: list[FunnelStep],
    window: int,
    order: str,
    breakdown: str | None,
    breakdown_limit: int | None,
    exclusions: list[FunnelExclusion],
    attribution: Attribution = ENTRY,
) -> list[Any]:
    """The summary rows ``kind, g, v, step, n, mid_sum, mid_n`` from the event store's SQL."""
    if is_clickhouse():
        from ..engines.clickhouse.funnel import summary_rows

        return summary_rows(
            ctx, steps, window, order, breakdown, breakdown_limit, exclusions, attribution
        )
    chains = _chains(ctx, steps, window, order, breakdown, exclusions, attribution)
    with report_connection() as connection:
        return list(connection.execute(_summary(chains, len(steps), breakdown_limit)))


def funnel(
    ctx: ReportContext,
    steps: list[FunnelStep],
    *,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
    order: str = "ordered",
    breakdown: str | None = None,
    breakdown_limit: int = 10,
    exclusions: list[FunnelExclusion] | None = None,
    breakdown_attribution: str = "entry",
    breakdown_attribution_step: int | None = None,
) -> FunnelResult:
    """Persons reaching each step, conversions, and median time from the previous step; with
    ``breakdown``, also per value of that property on the event ``breakdown_attribution``
    picks (:class:`Attribution`; by default the entry event of each person's best chain),
    the top ``breakdown_limit`` values by step-1 persons, then ``$other``. ``exclusions``
    drop the attempts with an excluded event between two of their steps first."""
    _validate(steps, window_seconds, order, breakdown_limit)
    _validate_exclusions(steps, exclusions or [], order)
    attribution = _attribution(
        steps, order, breakdown, breakdown_attribution, breakdown_attribution_step
    )
    window = window_seconds * _MICROS
    limit = breakdown_limit if breakdown is not None else None
    groups: dict[tuple[int, int], tuple[str | None, dict[int, tuple[int, float | None]]]] = {}
    rows = _summary_rows(ctx, steps, window, order, breakdown, limit, exclusions or [], attribution)
    for row in rows:
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
    return FunnelResult(
        overall,
        order,
        window_seconds,
        breakdown,
        breakdowns,
        ctx.sample,
        exclusions or None,
        attribution.kind if breakdown is not None else None,
        attribution.step if attribution.kind == "step" else None,
    )


def funnel_persons(
    ctx: ReportContext,
    steps: list[FunnelStep],
    *,
    funnel_step: int,
    dropoff: bool = False,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
    order: str = "ordered",
    exclusions: list[FunnelExclusion] | None = None,
    breakdown: str | None = None,
    breakdown_limit: int = 10,
    breakdown_value: str | None = None,
    breakdown_attribution: str = "entry",
    breakdown_attribution_step: int | None = None,
) -> PersonSource:
    """The persons behind a step's count: those whose chosen attempt reached ``funnel_step``
    (1-based), qualified at that step's time; with ``dropoff``, those who reached the step
    before it but not this one, qualified at their last step's time.

    With ``breakdown``, the persons of one breakdown group of :func:`funnel` with the same
    parameters: ``breakdown_value`` (``None``: the missing-value group; ``$other``: every value
    outside the report's top ``breakdown_limit``), as ``breakdown_attribution`` assigns them."""
    _validate(steps, window_seconds, order, breakdown_limit)
    _validate_exclusions(steps, exclusions or [], order)
    attribution = _attribution(
        steps, order, breakdown, breakdown_attribution, breakdown_attribution_step
    )
    if not 1 <= funnel_step <= len(steps):
        raise ValidationError("funnel_step", f"must be between 1 and {len(steps)}")
    if dropoff and funnel_step < 2:
        raise ValidationError("dropoff", "needs funnel_step 2 or more (nobody drops off step 1)")
    if breakdown is None and breakdown_value is not None:
        raise ValidationError("breakdown_value", "needs a breakdown")
    window = window_seconds * _MICROS
    reached = funnel_step - 1 if dropoff else funnel_step
    group = None if breakdown is None else (breakdown_value, breakdown_limit)
    if is_clickhouse():
        from ..engines.clickhouse.funnel import persons_sql

        return PersonSource.clickhouse(
            *persons_sql(
                ctx,
                steps,
                window,
                order,
                exclusions or [],
                reached,
                dropoff,
                breakdown=breakdown,
                group=group,
                attribution=attribution,
            )
        )
    chains = _chains(ctx, steps, window, order, breakdown, exclusions or [], attribution)
    if group is None:
        best: Any = _best_attempts(chains)
        conditions = []
    else:
        value, limit = group
        best = _ranked_attempts(chains)
        if value == OTHER:
            conditions = [best.c.grank > limit]
        else:
            same = best.c.bd.is_(None) if value is None else best.c.bd == value
            conditions = [best.c.grank <= limit, same]
    level = best.c.level == reached if dropoff else best.c.level >= reached
    return PersonSource.sql(
        select(best.c.person_id, best.c[f"t{reached}"].label("at")).where(level, *conditions)
    )
