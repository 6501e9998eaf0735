"""First-seen cohorts in ClickHouse SQL: each person's earliest matching event over all time
(through the newest distinct-id map, so a later merge moves them), counted per period."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .expressions import Params, bucket_index, person_events, scoped_events
from .runner import rows

if TYPE_CHECKING:
    from ...queries.buckets import Buckets
    from ...queries.context import ReportContext


def first_seen_sizes(ctx: ReportContext, buckets: Buckets) -> dict[int, int]:
    """``{cohort index: persons first seen in it}`` for first events in the buckets."""
    params = Params()
    source = person_events(ctx, params, bounds=(None, None))
    first = f"(SELECT person_id, min(us) AS first_us FROM {source} GROUP BY person_id)"
    start = params.bind(buckets.start_us, "Int64")
    stop = params.bind(buckets.end_us, "Int64")
    found = rows(
        f"SELECT {bucket_index(buckets, 'first_us', params)} AS cohort, count() FROM {first} "
        f"WHERE first_us >= {start} AND first_us < {stop} GROUP BY cohort",
        params,
    )
    return {int(cohort): int(n) for cohort, n in found}


def first_seen_in_range(ctx: ReportContext) -> int:
    """Persons whose first matching event ever lies in the report's range (the dashboard)."""
    params = Params()
    source = person_events(ctx, params, bounds=(None, None))
    start = params.bind(ctx.from_us, "Int64")
    stop = params.bind(ctx.to_us, "Int64")
    found = rows(
        f"SELECT count() FROM (SELECT person_id, min(us) AS first_us FROM {source} "
        f"GROUP BY person_id) WHERE first_us >= {start} AND first_us < {stop}",
        params,
    )
    return int(found[0][0])


def events_in_range(ctx: ReportContext) -> int:
    """Events of the report's persons in its range (the dashboard's total)."""
    params = Params()
    return int(rows(f"SELECT count() FROM {person_events(ctx, params)}", params)[0][0])


def raw_events_in_range(ctx: ReportContext) -> int:
    """Events stored in the report's range, whoever they belong to (``events.events_today``)."""
    params = Params()
    return int(rows(f"SELECT count() FROM {scoped_events(ctx, params)}", params)[0][0])
