"""Stickiness in ClickHouse SQL, with the semantics of ``queries/stickiness.py``: per person the
number of distinct periods of the range with the event (``uniqExact``), then persons per number."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .expressions import Params, bucket_index, chosen_event, person_events
from .runner import rows

if TYPE_CHECKING:
    from ...queries.buckets import Buckets
    from ...queries.context import ReportContext


def counts(ctx: ReportContext, buckets: Buckets, event: str | None) -> dict[int, int]:
    """``{number of periods: persons}`` of the numbers someone has."""
    params = Params()
    chosen = chosen_event(event, params)
    source = person_events(ctx, params, where=[chosen])
    query = (
        "SELECT periods_done, count() FROM (SELECT person_id, "
        f"uniqExact({bucket_index(buckets, 'us', params)}) AS periods_done FROM {source} "
        "GROUP BY person_id) GROUP BY periods_done"
    )
    return {int(n): int(persons) for n, persons in rows(query, params)}


def persons_sql(
    ctx: ReportContext, buckets: Buckets, event: str | None, periods: int
) -> tuple[str, Params]:
    """``person_id, at`` of the persons who did the event in exactly ``periods`` periods
    (``queries/stickiness.py:stickiness_persons``), ``at`` their first such event."""
    params = Params()
    chosen = chosen_event(event, params)
    source = person_events(ctx, params, where=[chosen])
    return (
        f"SELECT person_id, min(us) AS at FROM {source} GROUP BY person_id "
        f"HAVING uniqExact({bucket_index(buckets, 'us', params)}) = "
        f"{params.bind(periods, 'UInt64')}",
        params,
    )
