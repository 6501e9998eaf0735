"""Active users in ClickHouse SQL: distinct persons with an active event, and the DAU / WAU / MAU
series (a person active on day ``a`` counts on days ``a .. a + window - 1``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...events.validation import to_micros
from .expressions import Params, bucket_index, person_events
from .runner import rows

if TYPE_CHECKING:
    from ...queries.buckets import Buckets
    from ...queries.context import ReportContext


def active_users(ctx: ReportContext) -> int:
    params = Params()
    source = person_events(ctx, params, where=["active"])
    return int(rows(f"SELECT uniqExact(person_id) FROM {source}", params)[0][0])


def active_counts(ctx: ReportContext, reach: Buckets, days: int) -> dict[int, int]:
    """``{reach day index: active persons in the window ending that day}`` (days with none are
    absent). Each active person-day is spread over the ``days`` it counts on, then persons are
    counted once per day (``uniqExact``)."""
    params = Params()
    source = person_events(
        ctx, params, bounds=(reach.start_us, to_micros(reach.end)), where=["active"]
    )
    index = bucket_index(reach, "us", params)
    window = params.bind(days, "Int64")
    found = rows(
        "SELECT counted_day, uniqExact(person_id) FROM ("
        f"SELECT DISTINCT person_id, {index} AS active_day FROM {source}) "
        f"ARRAY JOIN range(active_day, active_day + {window}) AS counted_day "
        "GROUP BY counted_day",
        params,
    )
    return {int(day): int(count) for day, count in found}
