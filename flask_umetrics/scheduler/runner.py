"""APScheduler wiring: fire the configured jobs, but only on the leader, once per period.

Two safeguards work together. Leader election keeps all but one process idle. The run record
(a claim per job and period in the database) makes a job run once per period even if two
processes both believe they lead, or one restarts mid-period.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import traceback
import uuid
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from ..db.types import utcnow
from ..state import EXTENSION_KEY, UMetricsState
from . import runs
from .jobs import JobDefinition, configured_jobs
from .leader import Leader, make_leader

logger = logging.getLogger("flask_umetrics")

LEADER_NAME = "scheduler"
RETAKE_JOB_ID = "umetrics:retake-abandoned-runs"


def _state(app: Flask) -> UMetricsState:
    return app.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]


class SchedulerRunner:
    """Runs the configured jobs of one app in a background thread."""

    def __init__(self, app: Flask, *, use_leader: bool = True) -> None:
        self._app = app
        state = _state(app)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = timedelta(seconds=state.settings["UMETRICS_SCHEDULER_LEASE_SECONDS"])
        self.jobs = configured_jobs(state)
        self._leader: Leader | None = (
            make_leader(state.engine, LEADER_NAME, self.owner, self.lease) if use_leader else None
        )
        self._scheduler = BackgroundScheduler()
        self.pid = os.getpid()
        self._leader_lock = threading.Lock()
        self._retaking: set[str] = set()
        if self.jobs:
            # A job whose runner died mid-run is re-run for its period once the claim lapses.
            self._scheduler.add_job(
                self.retake_abandoned,
                trigger="interval",
                seconds=max(1.0, self.lease.total_seconds() / 3),
                id=RETAKE_JOB_ID,
                name=RETAKE_JOB_ID,
                coalesce=True,
                max_instances=1,
            )
        for job in self.jobs:
            self._scheduler.add_job(
                self.execute,
                trigger=job.schedule.trigger(),
                args=[job],
                id=job.key,
                name=job.key,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=int(self.lease.total_seconds()),
            )

    def start(self) -> None:
        """Start firing jobs in a background thread."""
        logger.info(
            "flask-umetrics scheduler %s starting with jobs: %s",
            self.owner,
            ", ".join(f"{j.key} [{j.schedule.spec}]" for j in self.jobs) or "none",
        )
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self._leader is not None:
            # Job threads may still be asking is_leader() on the leader's one connection
            # (shutdown does not wait for them): never use it from two threads at once.
            with self._leader_lock, self._app.app_context():
                self._leader.release()

    def is_leader(self) -> bool:
        with self._leader_lock:  # job threads share the leader's connection
            return self._leader is None or self._leader.is_leader()

    def retake_abandoned(self, now: datetime | None = None) -> list[str]:
        """On the leader, re-run each job whose claim for its current period was left
        ``running`` by a dead process (lease lapsed); returns the keys of the jobs started.

        So a job killed mid-run completes once for its period: after at most the lease, the
        leader takes the claim over (``attempts`` counts the tries) and runs the job again.
        """
        moment = now or utcnow()
        with self._app.app_context():
            try:
                if not self.is_leader():
                    return []
                lapsed = runs.abandoned(
                    _state(self._app).engine, [job.key for job in self.jobs], moment
                )
            except Exception:
                logger.exception("flask-umetrics: could not look for abandoned job runs")
                return []
        started = []
        for job in self.jobs:
            period_start = job.schedule.period_start(moment)
            if (job.key, job.schedule.period_key(period_start)) not in lapsed:
                continue
            with self._leader_lock:
                if job.key in self._retaking:
                    continue
                self._retaking.add(job.key)
            logger.warning(
                "flask-umetrics: taking over job %s for %s from a runner that stopped",
                job.key,
                job.schedule.period_key(period_start),
            )
            threading.Thread(target=self._retake, args=(job, period_start), daemon=True).start()
            started.append(job.key)
        return started

    def _retake(self, job: JobDefinition, period_start: datetime) -> None:
        try:
            self.execute(job, now=period_start)
        finally:
            with self._leader_lock:
                self._retaking.discard(job.key)

    def run_due(self, now: datetime | None = None) -> dict[str, str]:
        """Run every job for its current period now (each still at most once per period)."""
        return {job.key: self.execute(job, now=now) for job in self.jobs}

    def execute(self, job: JobDefinition, now: datetime | None = None) -> str:
        """Run ``job`` for the period ``now`` falls in, if this process leads and may claim it.

        Returns ``ran``, ``failed``, ``not_leader`` or ``already_claimed``.
        """
        with self._app.app_context():
            engine = _state(self._app).engine
            try:
                if not self.is_leader():
                    return "not_leader"
                period_start = job.schedule.period_start(now or utcnow())
                period = job.schedule.period_key(period_start)
                if not runs.claim(engine, job.key, period, self.owner, self.lease):
                    return "already_claimed"
            except Exception:
                logger.exception("flask-umetrics: could not claim job %s", job.key)
                return "failed"
            stop_renewing = threading.Event()
            renewer = threading.Thread(
                target=self._keep_claim, args=(job.key, period, stop_renewing), daemon=True
            )
            renewer.start()
            error: str | None = None
            detail = None
            try:
                detail = job.run(period_start)
            except Exception as exc:
                logger.exception("flask-umetrics: job %s failed for %s", job.key, period)
                error = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:4000]
            finally:
                stop_renewing.set()
                renewer.join()
            runs.finish(engine, job.key, period, self.owner, error=error, detail=detail)
            if error is not None:
                return "failed"
            logger.info("flask-umetrics: job %s ran for %s: %s", job.key, period, detail)
            return "ran"

    def _keep_claim(self, job_key: str, period: str, stop: threading.Event) -> None:
        interval = self.lease.total_seconds() / 3
        engine = _state(self._app).engine
        while not stop.wait(interval):
            try:
                if not runs.renew(engine, job_key, period, self.owner, self.lease):
                    logger.warning("flask-umetrics: lost the claim on %s %s", job_key, period)
                    return
            except Exception:
                logger.exception("flask-umetrics: could not renew the claim on %s", job_key)


def start_in_process_scheduler(app: Flask) -> None:
    """Start a background scheduler in each web process on its first request.

    Starting lazily (not in ``init_app``) means a pre-forking server such as gunicorn starts one
    per worker after the fork; leader election then keeps all but one idle.
    """
    state = _state(app)
    lock = threading.Lock()

    def ensure_started() -> None:
        runner = state.scheduler
        if runner is not None and runner.pid == os.getpid():
            return
        with lock:
            if state.scheduler is not None and state.scheduler.pid == os.getpid():
                return
            runner = SchedulerRunner(app)
            runner.start()
            state.scheduler = runner
            atexit.register(runner.shutdown)

    app.before_request(ensure_started)
