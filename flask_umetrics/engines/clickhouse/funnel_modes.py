"""Funnel trends and time to convert in ClickHouse SQL: the rows ``queries/funnel_modes.py``
reads, from the attempts of ``engines/clickhouse/funnel.py`` (same definitions)."""

from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING, Any

from .expressions import Params, bucket_index
from .funnel import FUNNEL_SETTINGS, _best, _chains
from .runner import rows

if TYPE_CHECKING:
    from ...queries.buckets import Buckets
    from ...queries.context import ReportContext
    from ...queries.funnel import FunnelExclusion, FunnelStep

_MICROS = 1_000_000
_Trend = namedtuple("_Trend", "period entered converted")
_Bin = namedtuple("_Bin", "bin n total start_s width_s mid_sum mid_n")


def trend_rows(
    ctx: ReportContext,
    steps: list[FunnelStep],
    window: int,
    order: str,
    exclusions: list[FunnelExclusion],
    buckets: Buckets,
) -> list[Any]:
    """``period, entered, converted``: per entry period, the persons with an attempt entering
    in it and those of them with such an attempt reaching the last step."""
    params = Params()
    chains = _chains(ctx, steps, window, order, None, exclusions, params)
    period = bucket_index(buckets, "tt1", params)
    query = (
        f"SELECT period, count() AS entered, countIf(level >= {len(steps)}) AS converted "
        f"FROM (SELECT person_id, {period} AS period, max(level) AS level FROM ({chains}) "
        "GROUP BY person_id, period) GROUP BY period"
    )
    return [_Trend(*r) for r in rows(query, params, FUNNEL_SETTINGS)]


def time_rows(
    ctx: ReportContext,
    steps: list[FunnelStep],
    window: int,
    order: str,
    exclusions: list[FunnelExclusion],
    from_step: int,
    to_step: int,
    bins: int,
) -> list[Any]:
    """``bin, n, total, start_s, width_s, mid_sum, mid_n`` as ``funnel_modes._time_query``."""
    params = Params()
    chains = _chains(ctx, steps, window, order, None, exclusions, params)
    deltas = (
        f"SELECT chain_times[{to_step + 1}] - chain_times[{from_step + 1}] AS delta "
        f"FROM ({_best(chains)}) WHERE level >= {to_step + 1}"
    )
    span = bins * _MICROS
    ranked = (
        "SELECT delta, row_number() OVER (ORDER BY delta) AS rn, count() OVER () AS cnt, "
        f"intDiv(min(delta) OVER (), {_MICROS}) AS start_s, max(delta) OVER () AS hi "
        f"FROM ({deltas})"
    )
    sized = (
        f"SELECT *, greatest(1, intDiv(hi - start_s * {_MICROS} + {span - 1}, {span})) "
        f"AS width_s FROM ({ranked})"
    )
    binned = (
        f"SELECT *, least({bins - 1}, intDiv(delta - start_s * {_MICROS}, width_s * {_MICROS})) "
        "AS bin, (2 * rn >= cnt AND 2 * rn <= cnt + 2) AS middle "
        f"FROM ({sized})"
    )
    query = (
        "SELECT bin, count() AS n, sum(delta) AS total, max(start_s) AS start_s, "
        "max(width_s) AS width_s, sumIf(delta, middle) AS mid_sum, "
        f"countIf(middle) AS mid_n FROM ({binned}) GROUP BY bin"
    )
    return [_Bin(*r) for r in rows(query, params, FUNNEL_SETTINGS)]
