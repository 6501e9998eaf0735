"""Funnels in ClickHouse SQL, with the semantics of ``queries/funnel.py`` and the same summary
rows (``kind, g, v, step, n, mid_sum, mid_n``) its shaping reads.

Each person with an entry (a step-1 event in range) gets one array of their step events (in
``strict`` order: all their events) sorted by ``(ts, seq)`` (``seq`` orders ties as
``events.id`` does in SQL), with a 0/1 flag per distinct step definition, and per exclusion the
sorted times of its events; one row per entry (``ARRAY JOIN`` over the step-1 events in range)
then finds its chain with array functions:

- ``ordered``: step ``s`` (definition ``d``) is the ``(lt + 1 + u)``-th ``d``-event of the
  person, ``lt`` the ``d``-events strictly before the previous step's time and ``u`` the chain
  events at that time matching ``d`` (the rank look-up of the SQL path, corner included); one
  ``arrayFold`` over the steps builds the chain, so the statement does not grow with the
  number of steps (a subquery per step made ClickHouse's planning grow exponentially: 0.1 s of
  CPU for 3 steps before reading a row, the 20-step funnel tens of seconds).
- ``strict``: step ``s`` is the event ``s - 1`` places after the entry among all the person's
  events (any name, active or not, whatever the report's filters).
- ``any``: per event name, the moment of the ``r``-th match is the latest, over every set ``A``
  of its definitions, of the time of the ``(|A| - |S| + r)``-th ``A``-event at or after the
  entry (the entry left out), within the window (Hall's condition, as in SQL); step ``j`` is
  reached at the ``(j - 1)``-th smallest moment.

Then, as in SQL: each person's best entry (level, then earliest ``(ts, seq)``: one ``argMin``
per person), breakdown groups ranked by step-1 persons then value (missing last), and the two
middle values of the deltas per cell (``quantileExactLow`` + ``quantileExactHigh`` of 0.5,
halved in Python; no ``median``: ClickHouse's is sampled). Without a breakdown no per-event group
is carried at all.
"""

from __future__ import annotations

import dataclasses
from itertools import combinations
from typing import TYPE_CHECKING, Any

from ...queries.sql import OTHER
from .expressions import Params, person_events, prop_text, property_condition
from .runner import rows

if TYPE_CHECKING:
    from ...queries.context import ReportContext
    from ...queries.funnel import Attribution, FunnelExclusion, FunnelStep

_NEVER = 2**62  # a time after every event: "not found"
#: Room for the longest statement (20 steps, ``any``, six definitions of one name).
_MAX_QUERY_BYTES = 4 * 1024 * 1024
#: One-level aggregation per person: past ~50 MB of array states ClickHouse switches to
#: two-level aggregation, whose 256 buckets come out as as many small blocks, and every one
#: pays the array lambdas' fixed cost (measured on the 1M-event bench, the funnel with an
#: exclusion: 225 ms of CPU on two threads with it, 120 ms without; one thread: 110 ms).
FUNNEL_SETTINGS: dict[str, Any] = {
    "max_query_size": _MAX_QUERY_BYTES,
    "group_by_two_level_threshold": 0,
    "group_by_two_level_threshold_bytes": 0,
}


def summary_rows(
    ctx: ReportContext,
    steps: list[FunnelStep],
    window: int,
    order: str,
    breakdown: str | None,
    breakdown_limit: int | None,
    exclusions: list[FunnelExclusion],
    attribution: Attribution | None = None,
) -> list[Any]:
    """The summary rows of ``queries/funnel.py:_summary`` (``window`` in µs)."""
    params = Params()
    chains = _chains(ctx, steps, window, order, breakdown, exclusions, params, attribution)
    best = _best(chains)
    ranked = _ranked(best) if breakdown_limit is not None else best
    # One row per (person, step reached), then per cell: the count and the sorted deltas.
    delta = "if(step = 1, NULL, chain_times[step] - chain_times[step - 1])"
    cells = f"FROM ({ranked}) ARRAY JOIN range(1, toUInt64(level) + 1) AS step"
    if breakdown_limit is None:
        labels, keys = "0 AS kind, toInt64(0) AS g, CAST(NULL AS Nullable(String)) AS v", "step"
    else:
        # Each reached step counts twice: in the total (kind 0) and in its group (kind 1).
        limit = params.bind(breakdown_limit, "Int64")
        other = params.bind(OTHER, "String")
        labels = (
            f"kind, if(kind = 0, toInt64(0), toInt64(if(grank <= {limit}, grank, {limit} + 1))) "
            "AS g, if(kind = 0, CAST(NULL AS Nullable(String)), "
            f"if(grank <= {limit}, entry_bd, toNullable({other}))) AS v"
        )
        cells += " ARRAY JOIN [0, 1] AS kind"
        keys = "kind, g, v, step"
    # The two middle deltas (one twice when the count is odd): exact, no array to sort, and
    # planned in a few ms less than indexing a sorted groupArray.
    query = (
        f"SELECT {labels}, step, count() AS n, "
        f"quantileExactLow(0.5)({delta}) + quantileExactHigh(0.5)({delta}) AS mid_sum, "
        f"2 AS mid_n {cells} GROUP BY {keys} ORDER BY kind, g, step"
    )
    # Many steps sharing one name in ``any`` order spell out many sets (up to 63 per name).
    return [_Row(*r) for r in rows(query, params, FUNNEL_SETTINGS)]


@dataclasses.dataclass(frozen=True)
class _Row:
    kind: int
    g: int
    v: str | None
    step: int
    n: int
    mid_sum: int | None
    mid_n: int


def _best(chains: str) -> str:
    """Each person's chosen attempt: the highest level, then the earliest ``(ts, seq)`` entry
    (one ``argMin`` per person): ``person_id``, ``level``, ``entry_bd``, ``chain_times``."""
    return (
        "SELECT person_id, bestv.1 AS level, bestv.2 AS entry_bd, bestv.3 AS chain_times FROM "
        "(SELECT person_id, argMin((level, entry_bd, chain_times), "
        f"(-toInt64(level), tt1, entry_seq)) AS bestv FROM ({chains}) GROUP BY person_id)"
    )


def _ranked(best: str) -> str:
    """``best`` with ``grank``, the rank of its breakdown group: values by persons at step 1,
    ties by value, the missing value last (``queries/funnel.py:_ranked_attempts``)."""
    return (
        "SELECT *, dense_rank() OVER (ORDER BY bd_n DESC, entry_bd ASC NULLS LAST) AS grank "
        f"FROM (SELECT *, count() OVER (PARTITION BY entry_bd) AS bd_n FROM ({best}))"
    )


def persons_sql(
    ctx: ReportContext,
    steps: list[FunnelStep],
    window: int,
    order: str,
    exclusions: list[FunnelExclusion],
    reached: int,
    dropoff: bool,
    *,
    breakdown: str | None = None,
    group: tuple[str | None, int] | None = None,
    attribution: Attribution | None = None,
) -> tuple[str, Params]:
    """``person_id, at`` of the persons whose chosen attempt reached step ``reached`` (exactly,
    with ``dropoff``), as ``queries/funnel.py:funnel_persons``; with ``breakdown``, only those
    of ``group`` (the breakdown value, None: missing, ``$other``: the rest; and the limit)."""
    params = Params()
    chains = _chains(ctx, steps, window, order, breakdown, exclusions, params, attribution)
    level = params.bind(reached, "Int64")
    tests = [f"level = {level}" if dropoff else f"level >= {level}"]
    best = _best(chains)
    if group is not None:
        value, breakdown_limit = group
        best = _ranked(best)
        limit = params.bind(breakdown_limit, "Int64")
        if value == OTHER:
            tests.append(f"grank > {limit}")
        elif value is None:
            tests += [f"grank <= {limit}", "entry_bd IS NULL"]
        else:
            tests += [f"grank <= {limit}", f"entry_bd = {params.bind(value, 'String')}"]
    sql = f"SELECT person_id, chain_times[{level}] AS at FROM ({best}) WHERE {' AND '.join(tests)}"
    return sql, params


def _chains(
    ctx: ReportContext,
    steps: list[FunnelStep],
    window: int,
    order: str,
    breakdown: str | None,
    exclusions: list[FunnelExclusion],
    params: Params,
    attribution: Attribution | None = None,
) -> str:
    """One row per attempt that survives the exclusions: ``person_id``, ``level``,
    ``entry_bd``, ``entry_seq``, ``tt1``, ``chain_times`` (and the working arrays). ``entry_bd``
    is the value ``attribution`` picks (``queries/funnel.py:Attribution``)."""
    from ...queries.funnel import _clusters, _definitions

    n = len(steps)
    definitions, of = _definitions(steps)
    # Read without the report's filters (strict needs every event); they go into each flag.
    bare = dataclasses.replace(ctx, filters=())
    flags = [_condition(d, ctx, params) for d in definitions]
    excluded = [_condition(x.matcher(), ctx, params) for x in exclusions]
    where = [] if order == "strict" else ["(" + " OR ".join(flags + excluded) + ")"]
    source = person_events(bare, params, bounds=(ctx.from_us, ctx.to_us + window + 1), where=where)
    group = prop_text("properties", breakdown, params) if breakdown else "NULL"
    # Without a breakdown every event's group is NULL: carried as a constant, not per event.
    grouped = [f"CAST({group} AS Nullable(String))"] if breakdown else []
    # Per event: a 0/1 mark per definition (m<d>) and per exclusion (x<j>), computed once.
    marks = [f"toUInt8({c}) AS m{d}" for d, c in enumerate(flags)]
    marks += [f"toUInt8({c}) AS x{j}" for j, c in enumerate(excluded)]
    marked = ", ".join(["person_id", "us", "seq", *marks, *(f"{g} AS gv" for g in grouped)])
    tuples = ", ".join(
        ["us", "seq", *(f"m{d}" for d in range(len(definitions))), *(["gv"] if grouped else [])]
    )
    # The chain's array holds the step events only (strict: every event), each exclusion its
    # own sorted times: the arrays every entry row copies stay as small as the steps need.
    any_step = " OR ".join(f"m{d} = 1" for d in range(len(definitions)))
    kept = f"groupArrayIf(({tuples}), {any_step})"
    if order == "strict":
        kept = f"groupArray(({tuples}))"
    collected = [f"arraySort({kept}) AS evs"]
    collected += [f"arraySort(groupArrayIf(us, x{j} = 1)) AS xt{j}" for j in range(len(exclusions))]
    unpack = ", ".join(
        [
            "evs.1 AS tsa",
            "evs.2 AS sqa",
            *(f"evs.{3 + d} AS fa{d}" for d in range(len(definitions))),
            *([f"evs.{3 + len(definitions)} AS bda"] if breakdown else []),
            *(f"xt{j}" for j in range(len(exclusions))),
        ]
    )
    start = params.bind(ctx.from_us, "Int64")
    stop = params.bind(ctx.to_us, "Int64")
    # Only persons with an entry (a step-1 event in range) get their arrays built at all.
    entering = f"m{of[0]} = 1 AND us >= {start} AND us < {stop}"
    people = (
        f"SELECT person_id, {unpack} FROM (SELECT person_id, {', '.join(collected)} "
        f"FROM (SELECT {marked} FROM {source}) GROUP BY person_id HAVING countIf({entering}) > 0)"
    )
    if order == "ordered":  # per person, before one row per entry multiplies the work
        people = f"SELECT *, {_ordered_arrays(of)} FROM ({people})"
    entry_group = "bda[ei]" if breakdown else "CAST(NULL AS Nullable(String))"
    width = params.bind(window, "Int64")
    entries = (
        "SELECT *, ei AS entry_at, tsa[ei] AS tt1, sqa[ei] AS entry_seq, "
        f"{entry_group} AS entry_bd "
        f"FROM ({people}) ARRAY JOIN arrayFilter((i, t, f) -> f = 1 AND t >= {start} "
        f"AND t < {stop}, arrayEnumerate(tsa), tsa, fa{of[0]}) AS ei"
    )
    build = {"ordered": _ordered, "strict": _strict, "any": _any}[order]
    chains = build(entries, steps, of, width, _clusters(steps))
    if breakdown and attribution is not None and attribution.kind != "entry":
        chains = _attributed(chains, attribution, len(definitions), order)
    if not exclusions:
        return chains
    if order == "ordered":  # the fold's chain as the per-step columns the test below reads
        per_step = [f"chain[{k}] AS cc{k}, chain_times[{k}] AS tt{k}" for k in range(2, n + 1)]
        chains = f"SELECT *, {', '.join(per_step)} FROM ({chains})"
    # As in SQL: an excluded event strictly after the from-step, and strictly before the
    # to-step or (not reached) up to the end of the window; only once the from-step is reached.
    hits = []
    for j, x in enumerate(exclusions):
        lo, hi = x.from_step + 1, x.to_step + 1
        upper = f"if(cc{hi} > 0, t < tt{hi}, t <= tt1 + {width})"
        reached = "1" if lo == 1 else f"cc{lo} > 0"
        hits.append(f"({reached} AND arrayExists(t -> t > tt{lo} AND {upper}, xt{j}))")
    return f"SELECT * FROM ({chains}) WHERE NOT ({' OR '.join(hits)})"


def _attributed(chains: str, attribution: Attribution, definitions: int, order: str) -> str:
    """``chains`` with ``entry_bd`` replaced: the first / last non-missing value over the
    person's step events (``(ts, seq)`` order), or the value on the chain's event of a step."""
    if attribution.kind == "step":
        # The event of the step: its position in the ordered fold's chain, strict's column.
        k = attribution.step + 1
        at = f"chain[{k}]" if order == "ordered" else f"cc{k}"
        value = f"if({at} > 0, bda[{at}], NULL)" if attribution.step else "entry_bd"
    else:
        names = ", ".join(f"f{d}" for d in range(definitions))
        arrays = ", ".join(f"fa{d}" for d in range(definitions))
        matches = " OR ".join(f"f{d} = 1" for d in range(definitions))
        find = "arrayLastIndex" if attribution.kind == "last_touch" else "arrayFirstIndex"
        index = f"{find}((b, {names}) -> b IS NOT NULL AND ({matches}), bda, {arrays})"
        value = f"if({index} = 0, NULL, bda[{index}])"
    return f"SELECT * REPLACE (CAST({value} AS Nullable(String)) AS entry_bd) FROM ({chains})"


def _condition(step: FunnelStep, ctx: ReportContext, params: Params) -> str:
    """An event matches ``step`` and the report's filters."""
    conditions = [
        f"event = {params.bind(step.event, 'String')}",
        *(property_condition(f, "properties", params) for f in (*step.filters, *ctx.filters)),
    ]
    return "(" + " AND ".join(conditions) + ")"


def _level(n: int) -> str:
    return "1" + "".join(f" + (cc{s} > 0)" for s in range(2, n + 1))


def _times(n: int) -> str:
    return "[" + ", ".join(f"tt{s}" for s in range(1, n + 1)) + "]"


def _ordered_arrays(of: list[int]) -> str:
    """Per definition used, the person's arrays the ordered chain reads: its events' positions
    (``pa<d>``) and times (``td<d>``)."""
    # Lambdas capture no array column (ClickHouse copies a captured array per element).
    return ", ".join(
        f"arrayFilter((i, f) -> f = 1, arrayEnumerate(tsa), fa{d}) AS pa{d}, "
        f"arrayFilter((t, f) -> f = 1, tsa, fa{d}) AS td{d}"
        for d in sorted(set(of))
    )


def _ordered(
    entries: str, steps: list[FunnelStep], of: list[int], width: str, _: dict[str, Any]
) -> str:
    # Step s: the (lt + 1 + u)-th event of its definition, lt its events strictly before the
    # previous step's time, u the chain's events at that time matching it; 0 once broken.
    # The fold walks the steps 2..n as (positions, times, flags) of each one's definition.
    previous = "tsa[acc[-1]]"
    key = (
        f"arrayCount(t -> t < {previous}, x.2) + 1 + "
        f"arrayCount(c -> tsa[c] = {previous} AND x.3[c] = 1, acc)"
    )
    following = (
        "arrayMap(k -> if(acc[-1] > 0 AND k <= length(x.1) AND "
        f"x.2[k] <= tt1 + {width}, x.1[k], 0), [{key}])[1]"
    )
    walk = "[" + ", ".join(f"(pa{d}, td{d}, fa{d})" for d in of[1:]) + "]"
    # One fold: the statement grows by a tuple per step, its planning not per subquery.
    chain = f"arrayFold((acc, x) -> arrayPushBack(acc, {following}), {walk}, [toUInt32(entry_at)])"
    if len(of) == 1:  # nothing to walk (``[]`` has no type a lambda could take)
        chain = "[toUInt32(entry_at)]"
    return (
        f"SELECT *, {chain} AS chain, arrayCount(c -> c > 0, chain) AS level, "
        f"arrayMap(c -> tsa[c], chain) AS chain_times FROM ({entries})"
    )


def _strict(
    entries: str, steps: list[FunnelStep], of: list[int], width: str, _: dict[str, Any]
) -> str:
    n = len(steps)
    fits: list[str] = []
    columns = []
    for s in range(2, n + 1):
        at = f"entry_at + {s - 1}"
        fits.append(
            f"({at} <= length(tsa) AND fa{of[s - 1]}[{at}] = 1 AND tsa[{at}] <= tt1 + {width})"
        )
        columns.append(f"if({' AND '.join(fits)}, {at}, 0) AS cc{s}")
        columns.append(f"tsa[cc{s}] AS tt{s}")
    return (
        f"SELECT *, {_times(n)} AS chain_times, {_level(n)} AS level FROM "
        f"(SELECT *, {', '.join(columns)} FROM ({entries}))"
    )


def _any(
    entries: str,
    steps: list[FunnelStep],
    of: list[int],
    width: str,
    clusters: dict[str, dict[int, int]],
) -> str:
    n = len(steps)
    subsets: list[tuple[str, tuple[int, ...], int, int]] = []  # name, definitions, |A|, |S|
    for name, members in clusters.items():
        size = sum(members.values())
        for count in range(1, len(members) + 1):
            for chosen in combinations(sorted(members), count):
                subsets.append((name, chosen, sum(members[d] for d in chosen), size))
    arrays = []
    occurrences: dict[tuple[int, int], str] = {}
    for a, (_, chosen, steps_in, size) in enumerate(subsets):
        own = " OR ".join(f"f{d} = 1" for d in chosen)
        lambda_args = ", ".join(f"f{d}" for d in chosen)
        flag_arrays = ", ".join(f"fa{d}" for d in chosen)
        arrays.append(f"arrayFilter((t, {lambda_args}) -> {own}, tsa, {flag_arrays}) AS ta{a}")
        mine = " OR ".join(f"fa{d}[entry_at] = 1" for d in chosen)
        # How many A-events precede the entry's time, plus the entry itself when it is one.
        arrays.append(f"arrayCount(t -> t < tt1, ta{a}) + ({mine}) AS la{a}")
        for q in range(max(1, steps_in - size + 1), steps_in + 1):
            key = f"(la{a} + {q})"
            occurrences[(a, q)] = (
                f"if({key} <= length(ta{a}) AND ta{a}[{key}] <= tt1 + {width}, "
                f"ta{a}[{key}], {_NEVER})"
            )
    moments = []
    for name, members in clusters.items():
        size = sum(members.values())
        for r in range(1, size + 1):
            needs = [
                occurrences[(a, steps_in - size + r)]
                for a, (cluster, _, steps_in, _) in enumerate(subsets)
                if cluster == name and steps_in - size + r >= 1
            ]
            moments.append(needs[0] if len(needs) == 1 else f"greatest({', '.join(needs)})")
    matched = f"arraySort(arrayFilter(m -> m < {_NEVER}, [{', '.join(moments)}])) AS moments"
    columns = []
    for s in range(2, n + 1):
        columns.append(f"if(length(moments) >= {s - 1}, 1, 0) AS cc{s}")
        columns.append(f"moments[{s - 1}] AS tt{s}")
    inner = f"SELECT * FROM (SELECT *, {', '.join(arrays)} FROM ({entries}))"
    # One subquery per stage: an alias used in the same SELECT would be spelled out each time.
    with_moments = f"SELECT *, {matched} FROM ({inner})"
    return (
        f"SELECT *, {_times(n)} AS chain_times, {_level(n)} AS level FROM "
        f"(SELECT *, {', '.join(columns)} FROM ({with_moments}))"
    )
