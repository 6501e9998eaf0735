"""REST routes of the stat store: collectors with latest values, readings, series, snapshots."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from ..db.tables import collector_runs, snapshot_runs, stat_readings
from ..errors import APIError
from ..state import current_state
from ..stats import (
    CollectorResult,
    StatReading,
    get_latest_stats,
    get_stat_series,
    record_stat,
    run_stat_snapshot,
)
from .models import ScopedModel
from .params import DateTimeParam
from .router import APICall
from .routes import router

TAG = "stats"


class LastRun(BaseModel):
    status: str
    error: str | None
    captured_at: datetime


class CollectorOverview(BaseModel):
    key: str
    label: str
    format: str
    latest: StatReading | None
    last_run: LastRun | None


class StatsOverview(BaseModel):
    scope_id: str
    collectors: list[CollectorOverview]
    metrics: list[str] = Field(description="Every metric key with at least one reading.")


@router.route(
    "/stats",
    summary="Collectors with their latest values",
    permission="metrics.view",
    tag=TAG,
    query=ScopedModel,
    response=StatsOverview,
)
def stats_overview(call: APICall) -> StatsOverview:
    state = current_state()
    collectors = list(state.collectors)
    latest = get_latest_stats([c.key for c in collectors], scope_id=call.scope_id)
    rank = (
        func.row_number()
        .over(partition_by=collector_runs.c.collector_key, order_by=collector_runs.c.id.desc())
        .label("rank")
    )
    ranked = (
        select(
            collector_runs.c.collector_key,
            collector_runs.c.status,
            collector_runs.c.error,
            snapshot_runs.c.captured_at,
            rank,
        )
        .join(snapshot_runs, snapshot_runs.c.id == collector_runs.c.snapshot_id)
        .where(collector_runs.c.scope_id == call.scope_id)
        .subquery()
    )
    newest_run = select(ranked).where(ranked.c.rank == 1)
    metric_keys = (
        select(stat_readings.c.metric_key)
        .where(stat_readings.c.scope_id == call.scope_id)
        .distinct()
        .order_by(stat_readings.c.metric_key)
    )
    with state.engine.connect() as connection:
        last_runs = {row.collector_key: row for row in connection.execute(newest_run)}
        metrics = list(connection.execute(metric_keys).scalars())
    items = []
    for collector in collectors:
        reading = latest.get(collector.key)
        run = last_runs.get(collector.key)
        items.append(
            CollectorOverview(
                key=collector.key,
                label=collector.label,
                format=collector.format,
                latest=reading,
                last_run=LastRun(status=run.status, error=run.error, captured_at=run.captured_at)
                if run
                else None,
            )
        )
    return StatsOverview(scope_id=call.scope_id, collectors=items, metrics=metrics)


class LatestResponse(BaseModel):
    metric_key: str
    latest: StatReading | None


@router.route(
    "/stats/metrics/<metric_key>/latest",
    summary="Latest reading of a metric",
    permission="metrics.view",
    tag=TAG,
    query=ScopedModel,
    response=LatestResponse,
)
def stat_latest(call: APICall, metric_key: str) -> LatestResponse:
    readings = get_latest_stats([metric_key], scope_id=call.scope_id)
    reading = readings.get(metric_key)
    return LatestResponse(metric_key=metric_key, latest=reading)


class SeriesQuery(ScopedModel):
    limit: int = Field(30, ge=1, description="How many of the most recent readings.")
    since: DateTimeParam | None = Field(None, description="Inclusive lower bound.")
    until: DateTimeParam | None = Field(None, description="Exclusive upper bound.")


class SeriesPoint(BaseModel):
    captured_at: datetime
    value: float
    source: str


class SeriesResponse(BaseModel):
    metric_key: str
    series: list[SeriesPoint]


@router.route(
    "/stats/metrics/<metric_key>/series",
    summary="Most recent readings in ascending time order",
    permission="metrics.view",
    tag=TAG,
    query=SeriesQuery,
    response=SeriesResponse,
)
def stat_series(call: APICall, metric_key: str) -> SeriesResponse:
    maximum = current_state().settings["UMETRICS_STAT_SERIES_MAX_LIMIT"]
    if call.query.limit > maximum:
        raise APIError(
            400,
            "validation_error",
            f"limit: must be at most {maximum}",
            [{"field": "limit", "message": f"must be at most {maximum}"}],
        )
    series = get_stat_series(
        metric_key,
        scope_id=call.scope_id,
        limit=call.query.limit,
        since=call.query.since,
        until=call.query.until,
    )
    return SeriesResponse(
        metric_key=metric_key,
        series=[
            SeriesPoint(captured_at=r.captured_at, value=r.value, source=r.source) for r in series
        ],
    )


class RecordBody(ScopedModel):
    value: float = Field(allow_inf_nan=False)
    captured_at: DateTimeParam | None = None


@router.route(
    "/stats/metrics/<metric_key>/readings",
    methods=("POST",),
    summary="Record a reading",
    permission="metrics.manage",
    tag=TAG,
    body=RecordBody,
    response=StatReading,
    status=201,
)
def stat_record(call: APICall, metric_key: str) -> StatReading:
    return record_stat(
        metric_key,
        call.body.value,
        scope_id=call.scope_id,
        captured_at=call.body.captured_at,
        source="api",
    )


class SnapshotResponse(BaseModel):
    id: int
    scope_id: str
    captured_at: datetime
    trigger: str
    collectors_ok: int
    collectors_failed: int
    results: list[CollectorResult]


@router.route(
    "/stats/snapshots",
    methods=("POST",),
    summary="Run every collector now",
    permission="metrics.manage",
    tag=TAG,
    body=ScopedModel,
    response=SnapshotResponse,
    status=201,
)
def stat_snapshot_run(call: APICall) -> SnapshotResponse:
    result = run_stat_snapshot(scope_id=call.scope_id, trigger="api")
    return SnapshotResponse(**result.to_dict())


class SnapshotsQuery(ScopedModel):
    limit: int = Field(20, ge=1, le=200)


class SnapshotsResponse(BaseModel):
    snapshots: list[SnapshotResponse]


@router.route(
    "/stats/snapshots",
    summary="Recent snapshots with each collector's outcome",
    permission="metrics.view",
    tag=TAG,
    query=SnapshotsQuery,
    response=SnapshotsResponse,
)
def stat_snapshot_list(call: APICall) -> SnapshotsResponse:
    recent = (
        select(snapshot_runs)
        .where(snapshot_runs.c.scope_id == call.scope_id)
        .order_by(snapshot_runs.c.captured_at.desc(), snapshot_runs.c.id.desc())
        .limit(call.query.limit)
        .subquery()
    )
    query = (
        select(
            recent,
            collector_runs.c.collector_key,
            collector_runs.c.status,
            collector_runs.c.value,
            collector_runs.c.error,
            collector_runs.c.duration_ms,
        )
        .outerjoin(collector_runs, collector_runs.c.snapshot_id == recent.c.id)
        .order_by(recent.c.captured_at.desc(), recent.c.id.desc(), collector_runs.c.id)
    )
    snapshots: dict[int, SnapshotResponse] = {}
    with current_state().engine.connect() as connection:
        for row in connection.execute(query):
            snapshot = snapshots.get(row.id)
            if snapshot is None:
                snapshot = snapshots[row.id] = SnapshotResponse(
                    id=row.id,
                    scope_id=row.scope_id,
                    captured_at=row.captured_at,
                    trigger=row.trigger,
                    collectors_ok=row.collectors_ok,
                    collectors_failed=row.collectors_failed,
                    results=[],
                )
            if row.collector_key is not None:
                snapshot.results.append(
                    CollectorResult(
                        key=row.collector_key,
                        status=row.status,
                        value=row.value,
                        error=row.error,
                        duration_ms=row.duration_ms,
                    )
                )
    return SnapshotsResponse(snapshots=list(snapshots.values()))
