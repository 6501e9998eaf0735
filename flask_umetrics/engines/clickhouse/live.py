"""The live feed in ClickHouse SQL: the window's newest events (ties by ingestion ``seq``,
newest first, as SQL by ``id``) and the count per minute; no person join, as in SQL."""

from __future__ import annotations

from typing import Any

from .expressions import Params, bare_context, scoped_events
from .runner import rows


def feed(
    scope_id: str, since_us: int, until_us: int, minutes: int, limit: int
) -> tuple[list[tuple[Any, ...]], dict[int, int]]:
    """``([(uuid, event, distinct_id, us, properties JSON)], {minute: count})`` of the window
    ``since_us <= ts <= until_us``."""
    ctx = bare_context(scope_id)
    params = Params()
    window = scoped_events(ctx, params, bounds=(since_us, until_us + 1))
    newest = rows(
        f"SELECT uuid, event, distinct_id, us, properties FROM {window} "
        f"ORDER BY us DESC, seq DESC LIMIT {params.bind(limit, 'UInt32')}",
        params,
    )
    params = Params()
    window = scoped_events(ctx, params, bounds=(since_us, until_us + 1))
    since = params.bind(since_us, "Int64")
    last = params.bind(minutes - 1, "Int64")
    per_minute = rows(
        f"SELECT least(intDiv(us - {since}, 60000000), {last}) AS minute, count() "
        f"FROM {window} GROUP BY minute",
        params,
    )
    return newest, {int(minute): int(n) for minute, n in per_minute}
