"""The scheduler: periods, claims, leader election, pruning, and two real processes at once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select, text, update

from flask_umetrics import UMetrics, record_stat
from flask_umetrics.db.engine import create_umetrics_engine
from flask_umetrics.db.tables import (
    collector_runs,
    job_runs,
    scheduler_leases,
    snapshot_runs,
    stat_readings,
)
from flask_umetrics.pruning import prune
from flask_umetrics.scheduler import Schedule, SchedulerRunner, runs
from flask_umetrics.scheduler.leader import AdvisoryLockLeader, LeaseLeader
from flask_umetrics.state import current_state

from .conftest import AppFactory

ROOT = Path(__file__).resolve().parent.parent
UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- schedules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "tz", "now", "expected"),
    [
        ("0 * * * *", "UTC", utc(2026, 5, 1, 10, 30), utc(2026, 5, 1, 10, 0)),
        ("0 * * * *", "UTC", utc(2026, 5, 1, 10, 0), utc(2026, 5, 1, 10, 0)),
        ("0 * * * *", "UTC", utc(2026, 5, 1, 9, 59, 59), utc(2026, 5, 1, 9, 0)),
        ("30 3 * * *", "UTC", utc(2026, 5, 1, 3, 29), utc(2026, 4, 30, 3, 30)),
        # 03:30 in Berlin (summer time, UTC+2) is 01:30 UTC.
        ("30 3 * * *", "Europe/Berlin", utc(2026, 5, 1, 12, 0), utc(2026, 5, 1, 1, 30)),
        ("0 0 1 * *", "UTC", utc(2026, 3, 15), utc(2026, 3, 1)),
        ("every 15m", "UTC", utc(2026, 5, 1, 10, 44, 59), utc(2026, 5, 1, 10, 30)),
        ("every 1s", "UTC", utc(2026, 5, 1, 10, 0, 7, 999), utc(2026, 5, 1, 10, 0, 7)),
        ("every 1d", "Europe/Berlin", utc(2026, 5, 1, 23, 0), utc(2026, 5, 1)),
    ],
)
def test_period_start(spec: str, tz: str, now: datetime, expected: datetime) -> None:
    schedule = Schedule.parse(spec, tz)
    assert schedule.period_start(now) == expected
    assert schedule.period_key(now) == expected.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("spec", ["", "hourly", "every 0s", "every 5 weeks", "61 * * * *"])
def test_bad_schedules_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        Schedule.parse(spec, "UTC")


# -- claims ---------------------------------------------------------------------------------


def engine_of(app: Flask) -> Engine:
    return app.extensions["umetrics"].engine  # type: ignore[no-any-return]


def test_a_period_is_claimed_once_and_an_expired_claim_is_taken_over(app: Flask) -> None:
    engine = engine_of(app)
    lease = timedelta(seconds=30)
    assert runs.claim(engine, "job", "P1", "a", lease) is True
    assert runs.claim(engine, "job", "P1", "b", lease) is False
    assert runs.claim(engine, "job", "P2", "b", lease) is True
    assert runs.renew(engine, "job", "P1", "a", lease) is True
    assert runs.renew(engine, "job", "P1", "b", lease) is False
    # Owner a dies: its lease runs out while the run is still "running".
    with engine.begin() as connection:
        connection.execute(
            update(job_runs)
            .where(job_runs.c.period == "P1")
            .values(lease_expires_at=utc(2000, 1, 1))
        )
    assert runs.claim(engine, "job", "P1", "b", lease) is True
    assert runs.claim(engine, "job", "P1", "c", lease) is False
    runs.finish(engine, "job", "P1", "b", detail={"n": 1})
    with engine.connect() as connection:
        row = connection.execute(select(job_runs).where(job_runs.c.period == "P1")).one()
    assert (row.owner, row.status, row.attempts, row.detail) == ("b", "succeeded", 2, {"n": 1})
    # A finished run is never taken over, however old its lease.
    with engine.begin() as connection:
        connection.execute(update(job_runs).values(lease_expires_at=utc(2000, 1, 1)))
    assert runs.claim(engine, "job", "P1", "c", lease) is False


def test_racing_runners_run_a_job_once_per_period(make_app: AppFactory) -> None:
    """Two runners without leader election fire the same job at the same moment, 8 times."""
    extension = UMetrics()
    extension.register_stat_collector("n", lambda scope: 1)
    app = make_app(extension, UMETRICS_SNAPSHOT_SCHEDULE="every 1m", UMETRICS_PRUNE_SCHEDULE="off")
    first, second = SchedulerRunner(app, use_leader=False), SchedulerRunner(app, use_leader=False)
    [job] = first.jobs
    outcomes: list[str] = []
    for minute in range(8):
        now = utc(2026, 5, 1, 10, minute, 30)
        barrier = threading.Barrier(2)

        def fire(
            runner: SchedulerRunner, at: datetime = now, gate: threading.Barrier = barrier
        ) -> None:
            gate.wait()
            outcomes.append(runner.execute(job, now=at))

        threads = [threading.Thread(target=fire, args=(r,)) for r in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert Counter(outcomes) == {"ran": 8, "already_claimed": 8}
    with app.app_context(), engine_of(app).connect() as connection:
        captured = connection.execute(select(snapshot_runs.c.captured_at)).scalars().all()
    assert sorted(captured) == [utc(2026, 5, 1, 10, minute) for minute in range(8)]


def test_a_failing_job_is_recorded_as_failed(make_app: AppFactory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = make_app(UMETRICS_SNAPSHOT_SCHEDULE="off", UMETRICS_PRUNE_SCHEDULE="every 1h")
    runner = SchedulerRunner(app, use_leader=False)

    def broken_prune(**kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("flask_umetrics.scheduler.jobs.prune", broken_prune)
    assert runner.run_due(now=utc(2026, 5, 1, 10, 5)) == {"prune": "failed"}
    assert runner.run_due(now=utc(2026, 5, 1, 10, 6)) == {"prune": "already_claimed"}
    with engine_of(app).connect() as connection:
        row = connection.execute(select(job_runs)).one()
    assert (row.job_key, row.period, row.status) == ("prune", "2026-05-01T10:00:00Z", "failed")
    assert row.error == "RuntimeError: disk full"


# -- leaders --------------------------------------------------------------------------------


def test_lease_leader_is_exclusive_until_released_or_expired(app: Flask) -> None:
    engine = engine_of(app)
    a = LeaseLeader(engine, "scheduler", "a", timedelta(seconds=30))
    b = LeaseLeader(engine, "scheduler", "b", timedelta(seconds=30))
    assert a.is_leader() and a.is_leader()
    assert not b.is_leader()
    a.release()
    assert b.is_leader() and not a.is_leader()
    with engine.begin() as connection:  # b crashes: its lease lapses
        connection.execute(update(scheduler_leases).values(expires_at=utc(2000, 1, 1)))
    assert a.is_leader() and not b.is_leader()
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(scheduler_leases)).scalar() == 1


def test_advisory_lock_leader_on_postgresql(postgres_engine: Engine) -> None:
    engine = postgres_engine
    a, b = AdvisoryLockLeader(engine, "scheduler"), AdvisoryLockLeader(engine, "scheduler")
    assert a.is_leader() and a.is_leader()
    assert not b.is_leader()
    a.release()
    assert b.is_leader() and not a.is_leader()
    # b's connection dies (as when its process is killed): the server frees the lock.
    with engine.connect() as connection:
        pid = b._connection.execute(text("SELECT pg_backend_pid()")).scalar()  # type: ignore[union-attr]
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        connection.commit()
        # Termination is a signal: the lock is freed once that backend has really exited.
        alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
        for _ in range(100):
            gone = not connection.execute(alive, {"pid": pid}).scalar()
            connection.commit()  # activity views are snapshotted per transaction
            if gone:
                break
            time.sleep(0.05)
    assert a.is_leader()
    assert not b.is_leader()
    a.release()
    b.release()


# -- pruning --------------------------------------------------------------------------------


def test_prune_deletes_only_expired_rows_in_batches(make_app: AppFactory) -> None:
    app = make_app(
        UMETRICS_RETENTION_STAT_READINGS_DAYS=30,
        UMETRICS_PRUNE_BATCH_SIZE=2,
        UMETRICS_RETENTION_COLLECTOR_RUNS_DAYS=0,
    )
    now = utc(2026, 6, 1)
    with app.app_context():
        for age_days in (0, 10, 29, 31, 45, 60, 90, 400):  # five are older than 30 days
            record_stat("m", age_days, captured_at=now - timedelta(days=age_days))
        record_stat("m", -1, captured_at=now - timedelta(days=30))  # exactly 30 days: kept
        steps: list[tuple[str, int]] = []
        deleted = prune(now=now, progress=lambda name, total: steps.append((name, total)))
        assert deleted == {"events": 0, "exposures": 0, "stat_readings": 5, "job_runs": 0}
        assert steps == [("stat_readings", 2), ("stat_readings", 4), ("stat_readings", 5)]
        with current_state().engine.connect() as connection:
            kept = connection.execute(select(stat_readings.c.value).order_by(stat_readings.c.value))
            assert kept.scalars().all() == [-1.0, 0.0, 10.0, 29.0]


def test_prune_removes_old_snapshots_with_their_collector_runs(make_app: AppFactory) -> None:
    from flask_umetrics import run_stat_snapshot

    extension = UMetrics()
    extension.register_stat_collector("n", lambda scope: 1)
    app = make_app(
        extension, UMETRICS_RETENTION_COLLECTOR_RUNS_DAYS=7, UMETRICS_RETENTION_STAT_READINGS_DAYS=0
    )
    now = utc(2026, 6, 1)
    with app.app_context():
        old = run_stat_snapshot(captured_at=now - timedelta(days=8))
        new = run_stat_snapshot(captured_at=now - timedelta(days=1))
        assert prune(now=now) == {"events": 0, "exposures": 0, "snapshot_runs": 1, "job_runs": 0}
        with current_state().engine.connect() as connection:
            assert connection.execute(select(snapshot_runs.c.id)).scalars().all() == [new.id]
            assert connection.execute(select(collector_runs.c.snapshot_id)).scalars().all() == [
                new.id
            ]
            # Readings outlive their snapshot record (kept forever here); the link is cleared.
            links = (
                connection.execute(select(stat_readings.c.snapshot_id).order_by(stat_readings.c.id))
                .scalars()
                .all()
            )
        assert links == [None, new.id]
        assert old.id != new.id


# -- two real processes ---------------------------------------------------------------------


def _start_scheduler(url: str, instance: Path, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.update(
        UMETRICS_DATABASE_URL=url,
        UMETRICS_SNAPSHOT_SCHEDULE="every 1s",
        UMETRICS_SNAPSHOT_SCOPES="acme",
        UMETRICS_PRUNE_SCHEDULE="every 2s",
        UMETRICS_SCHEDULER_LEASE_SECONDS="5",
        SCHEDULER_TEST_INSTANCE=str(instance),
        PYTHONPATH=str(ROOT),
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "tests.scheduler_app",
            "umetrics",
            "scheduler",
            "--duration",
            "6",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("election", ["leader", "no-leader"])
def test_two_scheduler_processes_run_each_job_once_per_period(
    database_url: str, tmp_path: Path, election: str
) -> None:
    extra = ("--no-leader",) if election == "no-leader" else ()
    processes = [_start_scheduler(database_url, tmp_path, *extra) for _ in range(2)]
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs

    engine = create_umetrics_engine(database_url)
    try:
        with engine.connect() as connection:
            jobs = connection.execute(
                select(job_runs.c.job_key, job_runs.c.period, job_runs.c.status)
            ).all()
            snapshots = connection.execute(
                select(snapshot_runs.c.captured_at, snapshot_runs.c.trigger)
            ).all()
            readings = connection.execute(
                select(stat_readings.c.metric_key, stat_readings.c.captured_at)
            ).all()
            failures = connection.execute(
                select(collector_runs.c.collector_key, collector_runs.c.error).where(
                    collector_runs.c.status == "error"
                )
            ).all()
    finally:
        engine.dispose()

    snapshot_periods = sorted(p for key, p, _ in jobs if key == "snapshot:acme")
    prune_periods = sorted(p for key, p, _ in jobs if key == "prune")
    assert len(snapshot_periods) >= 3, outputs
    assert len(prune_periods) >= 1, outputs
    assert {status for _, _, status in jobs} == {"succeeded"}
    # Exactly one snapshot per claimed period, stamped with the period's start ...
    stamped = sorted(c.strftime("%Y-%m-%dT%H:%M:%SZ") for c, _ in snapshots)
    assert stamped == snapshot_periods
    assert {trigger for _, trigger in snapshots} == {"scheduler"}
    # ... one "signups" reading per period, and the failing collector recorded each time.
    assert Counter(key for key, _ in readings) == {"signups": len(snapshot_periods)}
    assert len(failures) == len(snapshot_periods)
    assert failures[0] == ("billing", "ConnectionError: billing API unreachable")


def test_prune_deletes_expired_events(make_app: AppFactory) -> None:
    from .events_data import load

    app = make_app(UMETRICS_RETENTION_EVENTS_DAYS=10, UMETRICS_PRUNE_BATCH_SIZE=2)
    now = utc(2026, 6, 1)
    load(
        app,
        [
            ("a", "old", (now - timedelta(days=12)).isoformat()),
            ("a", "old", (now - timedelta(days=11)).isoformat()),
            ("b", "old", (now - timedelta(days=10, microseconds=1)).isoformat()),
            ("b", "kept", (now - timedelta(days=10)).isoformat()),  # exactly 10 days: kept
            ("c", "kept", (now - timedelta(days=1)).isoformat()),
        ],
    )
    with app.app_context():
        assert prune(now=now)["events"] == 3
        from flask_umetrics.db.tables import events

        with current_state().engine.connect() as connection:
            names = connection.execute(select(events.c.event)).scalars().all()
        assert sorted(names) == ["kept", "kept"]
