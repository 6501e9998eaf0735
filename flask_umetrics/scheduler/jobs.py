"""The scheduled jobs and the settings they come from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..ga4.measurement_protocol import parse_event_names
from ..pruning import prune
from ..state import UMetricsState
from ..stats.snapshot import run_stat_snapshot
from .schedules import Schedule

#: ``run(period_start)`` does the work and returns a JSON-able summary for the run record.
JobFunction = Callable[[datetime], Any]


@dataclass(frozen=True)
class JobDefinition:
    key: str
    schedule: Schedule
    run: JobFunction


def _snapshot(scope_id: str) -> JobFunction:
    def run(period_start: datetime) -> Any:
        # Readings carry the period start, so scheduled series line up on the schedule.
        result = run_stat_snapshot(scope_id=scope_id, trigger="scheduler", captured_at=period_start)
        return {"snapshot_id": result.id, "failed": [r.key for r in result.failed]}

    return run


def _prune(period_start: datetime) -> Any:
    details: dict[str, Any] = {}
    deleted: dict[str, Any] = dict(prune(details=details))
    if details:  # a ClickHouse event store: what was dropped and what was deleted
        deleted["details"] = details
    return deleted


def _ga4_sync(period_start: datetime) -> Any:
    # Only scopes with a linked property are visited; none means the Google libraries are
    # never imported.
    from ..ga4.sync import linked_scopes, sync_all

    if not linked_scopes():
        return {"scopes": 0}
    return {"results": [result.to_dict() for result in sync_all()]}


def _ga4_forward(period_start: datetime) -> Any:
    # Sends over HTTP with the standard library: the Google client libraries are not needed.
    from ..ga4.forwarding import forward_all

    return {"results": [result.to_dict() for result in forward_all()]}


def _squash(period_start: datetime) -> Any:
    from ..engines.clickhouse.overrides import squash
    from ..state import current_state

    return squash(current_state().event_store).to_dict()  # type: ignore[arg-type]


def configured_jobs(state: UMetricsState) -> list[JobDefinition]:
    """The jobs the settings ask for; a schedule of ``off`` leaves its job out."""
    settings = state.settings
    jobs: list[JobDefinition] = []
    snapshot_spec = settings["UMETRICS_SNAPSHOT_SCHEDULE"]
    if snapshot_spec:
        schedule = Schedule.parse(snapshot_spec, settings.timezone)
        for scope_id in settings.snapshot_scopes:
            jobs.append(JobDefinition(f"snapshot:{scope_id}", schedule, _snapshot(scope_id)))
    prune_spec = settings["UMETRICS_PRUNE_SCHEDULE"]
    if prune_spec:
        jobs.append(JobDefinition("prune", Schedule.parse(prune_spec, settings.timezone), _prune))
    squash_spec = settings["UMETRICS_CLICKHOUSE_SQUASH_SCHEDULE"]
    if squash_spec and state.event_store.name == "clickhouse":
        schedule = Schedule.parse(squash_spec, settings.timezone)
        jobs.append(JobDefinition("clickhouse-squash", schedule, _squash))
    ga4_spec = settings["UMETRICS_GA4_SYNC_SCHEDULE"]
    if ga4_spec:
        schedule = Schedule.parse(ga4_spec, settings.timezone)
        jobs.append(JobDefinition("ga4-sync", schedule, _ga4_sync))
    forward_spec = settings["UMETRICS_GA4_FORWARD_SCHEDULE"]
    if forward_spec and parse_event_names(settings["UMETRICS_GA4_FORWARD_EVENTS"]):
        schedule = Schedule.parse(forward_spec, settings.timezone)
        jobs.append(JobDefinition("ga4-forward", schedule, _ga4_forward))
    return jobs
