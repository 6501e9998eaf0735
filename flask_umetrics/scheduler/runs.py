"""Job run records: a claim per (job, period) so a job runs once per period across processes.

Claiming inserts a row under a unique constraint; the loser of a race gets an integrity error
and skips. A claim whose owner died (lease expired while ``running``) can be taken over by a
conditional update, which again only one process can win.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..db.tables import job_runs
from ..db.types import utcnow


def claim(engine: Engine, job_key: str, period: str, owner: str, lease: timedelta) -> bool:
    """True when this process now owns the run of ``job_key`` for ``period``."""
    now = utcnow()
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(job_runs).values(
                    job_key=job_key,
                    period=period,
                    owner=owner,
                    status="running",
                    attempts=1,
                    started_at=now,
                    lease_expires_at=now + lease,
                )
            )
        return True
    except IntegrityError:
        pass
    with engine.begin() as connection:
        taken = connection.execute(
            update(job_runs)
            .where(
                and_(
                    job_runs.c.job_key == job_key,
                    job_runs.c.period == period,
                    job_runs.c.status == "running",
                    job_runs.c.lease_expires_at < now,
                )
            )
            .values(
                owner=owner,
                started_at=now,
                lease_expires_at=now + lease,
                attempts=job_runs.c.attempts + 1,
            )
        )
        return taken.rowcount == 1


def renew(engine: Engine, job_key: str, period: str, owner: str, lease: timedelta) -> bool:
    """Extend this owner's claim; False when it was lost."""
    with engine.begin() as connection:
        result = connection.execute(
            update(job_runs)
            .where(
                job_runs.c.job_key == job_key,
                job_runs.c.period == period,
                job_runs.c.owner == owner,
                job_runs.c.status == "running",
            )
            .values(lease_expires_at=utcnow() + lease)
        )
        return result.rowcount == 1


def finish(
    engine: Engine,
    job_key: str,
    period: str,
    owner: str,
    *,
    error: str | None = None,
    detail: Any = None,
    finished_at: datetime | None = None,
) -> None:
    """Mark the claim ``succeeded`` (or ``failed`` with ``error``), with what the job reported."""
    with engine.begin() as connection:
        connection.execute(
            update(job_runs)
            .where(
                job_runs.c.job_key == job_key,
                job_runs.c.period == period,
                job_runs.c.owner == owner,
            )
            .values(
                status="failed" if error else "succeeded",
                error=error,
                detail=detail,
                finished_at=finished_at or utcnow(),
            )
        )


def abandoned(engine: Engine, job_keys: Collection[str], now: datetime) -> set[tuple[str, str]]:
    """``(job_key, period)`` of the claims still ``running`` whose lease lapsed: their owner died
    mid-job (a live owner renews its lease), so :func:`claim` may take them over."""
    if not job_keys:
        return set()
    with engine.connect() as connection:
        rows = connection.execute(
            select(job_runs.c.job_key, job_runs.c.period).where(
                job_runs.c.job_key.in_(list(job_keys)),
                job_runs.c.status == "running",
                job_runs.c.lease_expires_at < now,
            )
        ).all()
    return {(row.job_key, row.period) for row in rows}
