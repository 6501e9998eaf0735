"""People search's event side in ClickHouse SQL: each listed person's event count and last
event time, through the newest distinct-id map (the persons themselves are read in SQL)."""

from __future__ import annotations

from collections.abc import Sequence

from .expressions import Params, bare_context, person_events
from .runner import rows


def person_activity(scope_id: str, person_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """``{person id: (events, last event µs)}`` of those with events."""
    if not person_ids:
        return {}
    params = Params()
    source = person_events(bare_context(scope_id), params, bounds=(None, None))
    ids = params.bind(list(person_ids), "Array(Int64)")
    found = rows(
        f"SELECT person_id, count(), max(us) FROM {source} WHERE has({ids}, person_id) "
        "GROUP BY person_id",
        params,
    )
    return {int(person): (int(n), int(last)) for person, n, last in found}
