"""Paths in ClickHouse SQL, with the semantics of ``queries/paths.py``: each unit's (person's, or
session's) steps in the range ordered by ``(ts, seq)`` (SQL: ``(ts, id)``) as one array,
excluded names left out, consecutive repeats collapsed, cut at the first ``start_event`` (or the
first step) or at the first ``end_event``; transitions counted per step, the top ``limit`` per
step by units, ties by names (byte order = code point order)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .expressions import Params, person_events, prop_text
from .runner import rows
from .sessions import starts_session

if TYPE_CHECKING:
    from ...queries.context import ReportContext
    from ...queries.paths import PathOptions


def _step_name(options: PathOptions, params: Params) -> str:
    """The name an event shows as in a path: pathname, then the cleaning rules."""
    name = "event"
    if options.pathnames:
        pathname = prop_text("properties", "$pathname", params)
        pageview = params.bind("$pageview", "String")
        name = f"if(event = {pageview}, ifNull({pathname}, event), event)"
    for rule in options.cleaning:
        pattern = params.bind(rule.compiled, "String")
        name = f"replaceRegexpAll({name}, {pattern}, {params.bind(rule.replacement, 'String')})"
    return name


def transitions(
    ctx: ReportContext, options: PathOptions, steps: int, limit: int
) -> list[tuple[Any, ...]]:
    """``(step, from, to, units)`` rows, by step then rank."""
    from ...queries.sessions import session_timeout_us

    params = Params()
    per_session = options.unit == "session"
    source = person_events(ctx, params, where=["active"] if per_session else ())
    named = f"SELECT person_id, us, seq, event, {_step_name(options, params)} AS name"
    unit = "person_id"
    if per_session:
        # Sessions are split before exclusions, on the events the session rule sees.
        timeout = params.bind(session_timeout_us(), "Int64")
        named = (
            "SELECT person_id, session_id, us, seq, event, name, sum(if(session_id IS NULL AND "
            f"{starts_session(timeout)}, 1, 0)) OVER (PARTITION BY person_id, session_id ORDER BY "
            "us, seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session_no FROM ("
            "SELECT person_id, session_id, us, seq, event, name, lagInFrame(toNullable(us), 1, "
            "NULL) OVER (PARTITION BY person_id, session_id ORDER BY us, seq ROWS BETWEEN "
            f"1 PRECEDING AND CURRENT ROW) AS previous_us FROM ({named}, session_id FROM {source}))"
        )
        unit = "person_id, session_id, session_no"
    else:
        named += f" FROM {source}"
    excluded = ""
    if options.exclude:
        names = params.bind(list(options.exclude), "Array(String)")
        excluded = f" WHERE NOT has({names}, event) AND NOT has({names}, name)"
    per_unit = (
        "SELECT arrayFilter((e, i) -> i = 1 OR e != ordered[i - 1], ordered, "
        "arrayEnumerate(ordered)) AS path FROM ("
        "SELECT arrayMap(x -> x.3, arraySort(x -> (x.1, x.2), groupArray((us, seq, name)))) "
        f"AS ordered FROM ({named}){excluded} GROUP BY {unit})"
    )
    steps_p = params.bind(steps, "UInt32")
    if options.end_event is not None:
        anchor = f"indexOf(path, {params.bind(options.end_event, 'String')})"
        src, dst, valid = "path[anchor - step]", "path[anchor - step + 1]", "anchor - step >= 1"
    else:
        anchor = "1"
        if options.start_event is not None:
            anchor = f"indexOf(path, {params.bind(options.start_event, 'String')})"
        src, dst = "path[anchor + step - 1]", "path[anchor + step]"
        valid = "anchor + step <= length(path)"
    counted = (
        f"SELECT step, {src} AS src, {dst} AS dst, count() AS n "
        f"FROM (SELECT path, {anchor} AS anchor FROM ({per_unit})) "
        f"ARRAY JOIN range(1, {steps_p} + 1) AS step "
        f"WHERE anchor > 0 AND {valid} GROUP BY step, src, dst"
    )
    return rows(
        "SELECT step, src, dst, n FROM (SELECT step, src, dst, n, row_number() OVER "
        f"(PARTITION BY step ORDER BY n DESC, src ASC, dst ASC) AS place FROM ({counted})) "
        f"WHERE place <= {params.bind(limit, 'UInt32')} ORDER BY step, place",
        params,
    )
