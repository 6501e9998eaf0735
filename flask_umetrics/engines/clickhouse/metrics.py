"""Experiment metrics' event side in ClickHouse SQL. The units (persons or lone subjects, their
variant, first exposure and every distinct id) come from the SQL database, where exposures and
the distinct-id map live; they are bound as arrays, and ClickHouse finds each unit's qualifying
events with the rules of ``flags/metrics.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .expressions import Params, bare_context, prop_number, property_condition, scoped_events
from .runner import rows

if TYPE_CHECKING:
    from ...flags.model import MetricSpec

_MICROS = 1_000_000


def unit_values(
    scope_id: str,
    metric: MetricSpec,
    distinct_ids: Sequence[str],
    unit_of: Sequence[int],
    first_ts: Sequence[int],
    until_ts: int | None,
) -> dict[int, tuple[int, float]]:
    """``{unit: (qualifying events, sum of the numeric property)}`` of the units that have
    qualifying events; ``unit_of[i]`` (1-based) owns ``distinct_ids[i]``, ``first_ts[u - 1]`` is
    unit ``u``'s first exposure."""
    if not distinct_ids:
        return {}
    params = Params()
    ids = params.bind(list(distinct_ids), "Array(String)")
    units = params.bind(list(unit_of), "Array(UInt32)")
    firsts = params.bind(list(first_ts), "Array(Int64)")
    where = [
        f"event = {params.bind(metric.event, 'String')}",
        f"has({ids}, distinct_id)",
        *(property_condition(f, "properties", params) for f in metric.filters),
    ]
    source = scoped_events(bare_context(scope_id), params, bounds=(None, until_ts), where=where)
    number = prop_number("properties", metric.property, params) if metric.property else "NULL"
    window = ""
    if metric.window_seconds is not None:
        span = params.bind(metric.window_seconds * _MICROS, "Int64")
        window = f" AND us <= {firsts}[unit] + {span}"
    found = rows(
        "SELECT unit, count(), sum(ifNull(number, 0)) FROM ("
        f"SELECT {units}[indexOf({ids}, distinct_id)] AS unit, us, {number} AS number "
        f"FROM {source}) WHERE us >= {firsts}[unit]{window} GROUP BY unit",
        params,
    )
    return {int(unit): (int(n), float(amount)) for unit, n, amount in found}
