"""A person's events in ClickHouse SQL, newest first, cut by the ``(ts, seq)`` cursor (SQL cuts
by ``(ts, id)``: ``seq`` is the ingestion order, as ``id``)."""

from __future__ import annotations

from typing import Any

from .expressions import Params, bare_context, person_events
from .runner import rows


def person_page(
    scope_id: str, person_id: int, cursor: tuple[int, int] | None, limit: int
) -> list[tuple[Any, ...]]:
    """``(uuid, event, distinct_id, us, session_id, properties JSON, active, seq)`` rows."""
    params = Params()
    source = person_events(bare_context(scope_id), params, bounds=(None, None))
    where = [f"person_id = {params.bind(person_id, 'Int64')}"]
    if cursor is not None:
        ts = params.bind(cursor[0], "Int64")
        seq = params.bind(cursor[1], "UInt64")
        where.append(f"(us < {ts} OR (us = {ts} AND seq < {seq}))")
    return rows(
        "SELECT uuid, event, distinct_id, us, session_id, properties, active, seq "
        f"FROM {source} WHERE {' AND '.join(where)} ORDER BY us DESC, seq DESC "
        f"LIMIT {params.bind(limit, 'UInt32')}",
        params,
    )
