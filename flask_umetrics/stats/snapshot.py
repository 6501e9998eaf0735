"""Snapshots: run every collector of a scope with one shared ``captured_at``, isolating failures."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from ..db.tables import collector_runs, snapshot_runs, stat_readings
from ..db.types import utcnow
from ..errors import ValidationError
from ..state import current_state, resolve_scope
from ..validation import as_utc, validate_number

logger = logging.getLogger("flask_umetrics")

_MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True)
class CollectorResult:
    """What one collector did: ``ok`` with a value, ``skipped`` (it gave None), or ``error``."""

    key: str
    status: str
    value: float | None
    error: str | None
    duration_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "value": self.value,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 3),
        }


@dataclass(frozen=True)
class SnapshotResult:
    """A finished snapshot and its per-collector results."""

    id: int
    scope_id: str
    captured_at: datetime
    trigger: str
    results: list[CollectorResult] = field(default_factory=list)

    @property
    def failed(self) -> list[CollectorResult]:
        return [result for result in self.results if result.status == "error"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope_id": self.scope_id,
            "captured_at": self.captured_at.isoformat(),
            "trigger": self.trigger,
            "collectors_ok": sum(1 for r in self.results if r.status == "ok"),
            "collectors_failed": len(self.failed),
            "results": [result.to_dict() for result in self.results],
        }


def _run_one(key: str, collect: Any, scope_id: str) -> CollectorResult:
    started = time.perf_counter()
    try:
        raw = collect(scope_id)
        value = None if raw is None else validate_number(raw, f"collector {key!r} result")
    except Exception as exc:
        logger.exception("flask-umetrics: stat collector %r failed for scope %r", key, scope_id)
        message = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_LENGTH]
        return CollectorResult(key, "error", None, message, (time.perf_counter() - started) * 1e3)
    status = "skipped" if value is None else "ok"
    return CollectorResult(key, status, value, None, (time.perf_counter() - started) * 1e3)


def run_stat_snapshot(
    *,
    scope_id: str | None = None,
    trigger: str = "python",
    captured_at: datetime | None = None,
) -> SnapshotResult:
    """Run every registered collector for ``scope_id`` and store readings plus a run record."""
    state = current_state()
    scope = resolve_scope(scope_id)
    if not isinstance(trigger, str) or not 0 < len(trigger) <= 32:
        raise ValidationError("trigger", "must be a label of 1-32 characters")
    started_at = utcnow()
    when = started_at if captured_at is None else as_utc(captured_at, "captured_at")
    results = [_run_one(c.key, c.collect, scope) for c in state.collectors]
    with state.engine.begin() as connection:
        snapshot_id = connection.execute(
            insert(snapshot_runs)
            .values(
                scope_id=scope,
                captured_at=when,
                started_at=started_at,
                finished_at=utcnow(),
                trigger=trigger,
                collectors_ok=sum(1 for r in results if r.status == "ok"),
                collectors_failed=sum(1 for r in results if r.status == "error"),
            )
            .returning(snapshot_runs.c.id)
        ).scalar_one()
        if results:
            connection.execute(
                insert(collector_runs),
                [
                    {
                        "snapshot_id": snapshot_id,
                        "scope_id": scope,
                        "collector_key": r.key,
                        "status": r.status,
                        "value": r.value,
                        "error": r.error,
                        "duration_ms": r.duration_ms,
                    }
                    for r in results
                ],
            )
        readings = [
            {
                "scope_id": scope,
                "metric_key": r.key,
                "value": r.value,
                "captured_at": when,
                "source": "collector",
                "snapshot_id": snapshot_id,
            }
            for r in results
            if r.status == "ok"
        ]
        if readings:
            connection.execute(insert(stat_readings), readings)
    return SnapshotResult(snapshot_id, scope, when, trigger, results)
