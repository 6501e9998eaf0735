"""Reading and writing sticky assignments and exposures (and segment membership for targeting)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, delete, select

from ..db.tables import assignments, exposures, person_distinct_ids, persons
from ..db.upsert import insert_ignoring_conflicts

#: (experiment key, bucket version) -> variant
StoredAssignments = dict[tuple[str, int], str]


@dataclass(frozen=True)
class Served:
    """A variant served with consent: remembered as an assignment and logged as an exposure."""

    subject_id: str
    experiment_key: str
    bucket_version: int
    variant: str
    source: str
    at: datetime
    #: False when the assignment lives in the cookie (anonymous): only the exposure is written.
    store_assignment: bool = True


#: Built once: the sticky lookup runs on every request with a known subject.
_LOAD_ASSIGNMENTS = select(
    assignments.c.experiment_key, assignments.c.bucket_version, assignments.c.variant
).where(
    assignments.c.scope_id == bindparam("scope_id"),
    assignments.c.subject_id == bindparam("subject_id"),
)


def load_assignments(connection: Connection, scope_id: str, subject_id: str) -> StoredAssignments:
    """Every stored assignment of one subject: the single sticky lookup of a request."""
    rows = connection.execute(_LOAD_ASSIGNMENTS, {"scope_id": scope_id, "subject_id": subject_id})
    return {(row.experiment_key, row.bucket_version): row.variant for row in rows}


def forget_assignments(connection: Connection, scope_id: str, subject_id: str) -> int:
    """Delete one subject's stored assignments (consent withdrawn); exposures stay, as the
    record of what was shown. Returns how many were deleted."""
    result = connection.execute(
        delete(assignments).where(
            assignments.c.scope_id == scope_id, assignments.c.subject_id == subject_id
        )
    )
    return int(result.rowcount or 0)


def write_served(connection: Connection, scope_id: str, served: Iterable[Served]) -> None:
    """Store assignments and first exposures; rows that already exist are left as they are,
    so concurrent requests and retries never change an assignment or log a second exposure."""
    items = list(served)
    assignment_rows = [
        {
            "scope_id": scope_id,
            "subject_id": s.subject_id,
            "experiment_key": s.experiment_key,
            "bucket_version": s.bucket_version,
            "variant": s.variant,
            "source": s.source,
            "assigned_at": s.at,
        }
        for s in items
        if s.store_assignment
    ]
    exposure_rows = [
        {
            "scope_id": scope_id,
            "experiment_key": s.experiment_key,
            "bucket_version": s.bucket_version,
            "subject_id": s.subject_id,
            "variant": s.variant,
            "ts": int(s.at.timestamp() * 1_000_000),
        }
        for s in items
    ]
    if assignment_rows:
        connection.execute(
            insert_ignoring_conflicts(
                connection,
                assignments,
                "scope_id",
                "subject_id",
                "experiment_key",
                "bucket_version",
            ),
            assignment_rows,
        )
    if exposure_rows:
        connection.execute(
            insert_ignoring_conflicts(
                connection,
                exposures,
                "scope_id",
                "experiment_key",
                "bucket_version",
                "subject_id",
            ),
            exposure_rows,
        )


def in_segment(connection: Connection, scope_id: str, subject_id: str, segment_key: str) -> bool:
    """Whether the subject's person is in the saved segment (False for unknown segments)."""
    from ..queries.segments import get_segment_on

    segment = get_segment_on(connection, scope_id, segment_key)
    if segment is None:
        return False
    query = (
        select(persons.c.id)
        .select_from(persons)
        .join(
            person_distinct_ids,
            and_(
                person_distinct_ids.c.person_id == persons.c.id,
                person_distinct_ids.c.scope_id == scope_id,
                person_distinct_ids.c.distinct_id == subject_id,
            ),
        )
        .where(persons.c.scope_id == scope_id, segment.condition(persons.c.id))
        .limit(1)
    )
    return connection.execute(query).first() is not None
