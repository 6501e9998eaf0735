"""The GA4 report cache (``umetrics_ga4_report_cache``): one row per (scope, report, parameters).

GA4 Data API calls cost quota tokens and take hundreds of milliseconds, so answers are kept for
``UMETRICS_GA4_CACHE_TTL`` seconds. Expired rows are kept, not deleted: when Google answers with a
quota error the last answer is served marked stale (retention pruning removes old rows).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update

from ..db.tables import ga4_report_cache
from ..db.upsert import insert_ignoring_conflicts


@dataclass(frozen=True)
class CachedReport:
    result: dict[str, Any]
    quota: dict[str, Any] | None
    fetched_at: datetime
    expires_at: datetime

    def is_fresh(self, now: datetime) -> bool:
        return now < self.expires_at


def params_hash(params: Mapping[str, Any]) -> str:
    """A stable digest of normalised parameters: same parameters, same row, whatever the order."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def load(engine: Engine, scope_id: str, report: str, digest: str) -> CachedReport | None:
    """The cached answer, fresh or not; ``None`` when there is none."""
    table = ga4_report_cache
    query = select(table.c.result, table.c.quota, table.c.fetched_at, table.c.expires_at).where(
        table.c.scope_id == scope_id, table.c.report == report, table.c.params_hash == digest
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        return None
    return CachedReport(dict(row.result), row.quota, row.fetched_at, row.expires_at)


def store(
    engine: Engine,
    scope_id: str,
    report: str,
    params: Mapping[str, Any],
    *,
    result: Mapping[str, Any],
    quota: Mapping[str, Any] | None,
    fetched_at: datetime,
    expires_at: datetime,
) -> None:
    """Insert or replace the answer for (scope, report, params)."""
    table = ga4_report_cache
    digest = params_hash(params)
    values = {
        "params": dict(params),
        "result": dict(result),
        "quota": None if quota is None else dict(quota),
        "fetched_at": fetched_at,
        "expires_at": expires_at,
    }
    key = (table.c.scope_id == scope_id, table.c.report == report, table.c.params_hash == digest)
    with engine.begin() as connection:
        if connection.execute(update(table).where(*key).values(**values)).rowcount:
            return
        insert = insert_ignoring_conflicts(connection, table, "scope_id", "report", "params_hash")
        connection.execute(
            insert.values(scope_id=scope_id, report=report, params_hash=digest, **values)
        )


def clear(engine: Engine, scope_id: str) -> int:
    """Forget a scope's answers (its property changed or it disconnected); returns rows deleted."""
    with engine.begin() as connection:
        result = connection.execute(
            delete(ga4_report_cache).where(ga4_report_cache.c.scope_id == scope_id)
        )
        return int(result.rowcount)
