"""Faults: the database going away during ingestion, a web worker killed mid-batch, and the
scheduler leader killed mid-job. Each ends with every event stored exactly once, or the job's
run for its period completed once.

The machine's PostgreSQL is shared, so it is never stopped: a "PostgreSQL stopped and
restarted" outage is simulated by a TCP proxy (``tests/tcp_proxy.py``) between the app and the
server. ``cut()`` drops every open connection (in-flight transactions included) and refuses new
ones, as a stopped server does; ``restore()`` forwards again, as after the restart.
PostgreSQL only: the outages are network ones, and SQLite has no network.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import BaseWSGIServer, make_server

from bench.load import stored_counts
from flask_umetrics import create_api_key
from flask_umetrics.db.engine import create_umetrics_engine
from flask_umetrics.db.tables import job_runs

from .conftest import AppFactory
from .tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parent.parent
SCOPE = "faults"
API = "/umetrics/api"


@pytest.fixture
def pg_url(backend: str, database_url: str) -> str:
    if backend != "postgresql":
        pytest.skip("fault tests simulate network outages of PostgreSQL; SQLite has no network")
    return database_url


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy.for_url(pg_url)
    try:
        yield proxy
    finally:
        proxy.close()


def make_batch(prefix: str, size: int) -> list[dict[str, Any]]:
    return [
        {"event": "view", "distinct_id": f"{prefix}-u{i % 7}", "uuid": str(uuid.uuid4())}
        for i in range(size)
    ]


@dataclass
class RetryingClient:
    """A client that sends each batch until it is acknowledged, honouring ``Retry-After`` on a
    503 and retrying at once on a dropped connection; it keeps every answer it saw."""

    port: int
    key: str
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    retry_after: list[str] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    acknowledged: list[str] = field(default_factory=list)
    max_sleep: float = 1.0

    def send(self, batch: list[dict[str, Any]], deadline: float) -> None:
        body = json.dumps({"scope_id": SCOPE, "events": batch})
        headers = {"Content-Type": "application/json", "X-UMetrics-Key": self.key}
        while True:
            assert time.monotonic() < deadline, "a batch was never acknowledged"
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                connection.request("POST", API + "/events", body=body, headers=headers)
                response = connection.getresponse()
                payload = json.loads(response.read() or b"null")
            except (OSError, http.client.HTTPException):
                self.connection_errors += 1
                time.sleep(0.05)
                continue
            finally:
                connection.close()
            self.statuses[response.status] += 1
            if response.status == 200:
                assert payload["rejected"] == [], payload
                self.accepted += payload["accepted"]
                self.duplicates += payload["duplicates"]
                self.acknowledged.extend(event["uuid"] for event in batch)
                return
            assert response.status == 503, (response.status, payload)
            assert payload["error"]["code"] == "database_unavailable", payload
            self.retry_after.append(response.headers.get("Retry-After", ""))
            time.sleep(min(float(response.headers["Retry-After"]), self.max_sleep))


def _serve(app: Flask) -> tuple[BaseWSGIServer, threading.Thread]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


# -- the database goes away during ingestion -------------------------------------------------


def test_outage_answers_503_and_is_logged_once(
    make_app: AppFactory, pg_url: str, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(UMETRICS_DATABASE_URL=proxy.url(pg_url), UMETRICS_RETRY_AFTER_SECONDS=3)
    with app.app_context():
        key = create_api_key(SCOPE, "ingest")
        viewer = create_api_key(SCOPE, "metrics.view")
    client = app.test_client()
    headers = {"X-UMetrics-Key": key}
    first = make_batch("a", 5)
    assert (
        client.post(API + "/events", json={"scope_id": SCOPE, "events": first}).status_code == 401
    )
    answer = client.post(
        API + "/events", json={"scope_id": SCOPE, "events": first}, headers=headers
    )
    assert answer.status_code == 200
    assert answer.json == {"accepted": 5, "duplicates": 0, "rejected": [], "filtered": 0}

    proxy.cut()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="flask_umetrics"):
        second = make_batch("b", 4)
        for _ in range(4):
            answer = client.post(
                API + "/events", json={"scope_id": SCOPE, "events": second}, headers=headers
            )
            assert answer.status_code == 503
            assert answer.headers["Retry-After"] == "3"
            assert answer.json["error"]["code"] == "database_unavailable"
        query = client.get(
            API + f"/query/dashboard?scope_id={SCOPE}",
            headers={"Authorization": f"Bearer {viewer}"},
        )
        assert query.status_code == 503
        assert query.headers["Retry-After"] == "3"
        messages = [(r.levelno, r.getMessage()) for r in caplog.records]
        # One warning for the whole outage, no traceback per request.
        assert len(messages) == 1, messages
        assert messages[0][0] == logging.WARNING
        assert "database is unavailable" in messages[0][1]
        assert all(r.exc_info is None for r in caplog.records)

        proxy.restore()
        answer = client.post(
            API + "/events", json={"scope_id": SCOPE, "events": second}, headers=headers
        )
        assert answer.status_code == 200
        assert answer.json["accepted"] == 4
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 2, messages
        assert "answers again" in messages[1]
        assert "5 request(s) were answered 503" in messages[1]
    assert stored_counts(pg_url, SCOPE) == (9, 9)


def test_blackholed_database_answers_503_within_the_connect_timeout(
    make_app: AppFactory, pg_url: str, proxy: TcpProxy
) -> None:
    # A server that accepts TCP but never answers (a network partition) must not hang requests.
    url = proxy.url(pg_url) + "?connect_timeout=2"
    app = make_app(UMETRICS_DATABASE_URL=url, UMETRICS_API_KEY_CACHE_SECONDS=60)
    with app.app_context():
        key = create_api_key(SCOPE, "ingest")
    client = app.test_client()
    batch = {"scope_id": SCOPE, "events": make_batch("c", 3)}
    proxy.cut(blackhole=True)
    started = time.monotonic()
    answer = client.post(API + "/events", json=batch, headers={"X-UMetrics-Key": key})
    assert answer.status_code == 503
    assert 1.5 < time.monotonic() - started < 15
    proxy.restore()
    answer = client.post(API + "/events", json=batch, headers={"X-UMetrics-Key": key})
    assert answer.status_code == 200
    assert answer.json["accepted"] == 3
    assert stored_counts(pg_url, SCOPE) == (3, 3)


def test_concurrent_clients_through_an_outage_store_every_event_once(
    make_app: AppFactory, pg_url: str, proxy: TcpProxy
) -> None:
    app = make_app(UMETRICS_DATABASE_URL=proxy.url(pg_url), UMETRICS_RETRY_AFTER_SECONDS=1)
    with app.app_context():
        key = create_api_key(SCOPE, "ingest")
    server, thread = _serve(app)
    clients = [RetryingClient(server.server_port, key, max_sleep=0.3) for _ in range(4)]
    batches = [[make_batch(f"w{n}b{i}", 20) for i in range(25)] for n in range(4)]
    deadline = time.monotonic() + 60

    def stream(client: RetryingClient, mine: list[list[dict[str, Any]]]) -> None:
        for batch in mine:
            client.send(batch, deadline)

    workers = [
        threading.Thread(target=stream, args=(client, mine))
        for client, mine in zip(clients, batches, strict=True)
    ]
    try:
        for worker in workers:
            worker.start()
        # Cut while the clients stream (transactions in flight are dropped), then restart.
        time.sleep(0.4)
        proxy.cut()
        time.sleep(1.5)
        proxy.restore()
        for worker in workers:
            worker.join(timeout=90)
        assert not any(worker.is_alive() for worker in workers)
    finally:
        server.shutdown()
        thread.join(timeout=10)

    statuses = sum((client.statuses for client in clients), Counter())
    assert set(statuses) == {200, 503}, statuses  # never a 500
    assert {value for client in clients for value in client.retry_after} == {"1"}
    sent = {event["uuid"] for mine in batches for batch in mine for event in batch}
    assert len(sent) == 4 * 25 * 20
    acknowledged = [u for client in clients for u in client.acknowledged]
    assert sorted(acknowledged) == sorted(sent)
    # Each acknowledged event was stored by its answer or, when a connection dropped during
    # COMMIT left the outcome unknown to the app, reported as a duplicate on the retry.
    assert sum(client.accepted + client.duplicates for client in clients) == len(sent)
    assert stored_counts(pg_url, SCOPE) == (len(sent), len(sent))


# -- a gunicorn worker killed mid-batch ------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_killed_worker_loses_no_acknowledged_event(pg_url: str) -> None:
    pytest.importorskip("gunicorn", reason="gunicorn is in the dev and bench extras")
    from bench.load import prepare, start_gunicorn, stop_gunicorn

    key, _ = prepare(pg_url, SCOPE)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = start_gunicorn(pg_url, 2, port)
    clients = [RetryingClient(port, key) for _ in range(3)]
    batches: list[list[dict[str, Any]]] = []
    stop = threading.Event()
    deadline = time.monotonic() + 120

    def stream(client: RetryingClient, n: int) -> None:
        while not stop.is_set():
            batch = make_batch(f"k{n}b{len(batches)}", 100)
            batches.append(batch)
            client.send(batch, deadline)

    workers = [threading.Thread(target=stream, args=(c, n)) for n, c in enumerate(clients)]
    kills: list[int] = []
    try:
        for worker in workers:
            worker.start()
        # SIGKILL a worker (both are kept busy) every ~0.5 s while the clients stream; gunicorn
        # forks a replacement, which is killed in turn once it serves.
        while len(kills) < 6:
            time.sleep(0.5)
            pids = [pid for pid in _children(server.pid) if pid not in kills]
            if len(pids) == 2:
                os.kill(pids[len(kills) % 2], signal.SIGKILL)
                kills.append(pids[len(kills) % 2])
        time.sleep(1)
        stop.set()
        for worker in workers:
            worker.join(timeout=120)
        assert not any(worker.is_alive() for worker in workers)
    finally:
        stop.set()
        stop_gunicorn(server)

    assert sum(client.connection_errors for client in clients) >= 1  # requests were cut off
    statuses = sum((client.statuses for client in clients), Counter())
    assert set(statuses) == {200}, statuses
    sent = {event["uuid"] for batch in batches for event in batch}
    acknowledged = {u for client in clients for u in client.acknowledged}
    assert acknowledged == sent
    assert sum(client.accepted + client.duplicates for client in clients) == len(sent)
    # Everything acknowledged is stored, once; a batch cut off before its answer was stored
    # whole or not at all, and its retry completed it.
    assert stored_counts(pg_url, SCOPE) == (len(sent), len(sent))


# -- the scheduler leader killed mid-job -----------------------------------------------------


def _scheduler(url: str, markers: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.update(
        UMETRICS_DATABASE_URL=url,
        UMETRICS_SNAPSHOT_SCHEDULE="every 1d",
        UMETRICS_SNAPSHOT_SCOPES="acme",
        UMETRICS_PRUNE_SCHEDULE="off",
        UMETRICS_SCHEDULER_LEASE_SECONDS="5",
        FAULT_MARKER_DIR=str(markers),
        FAULT_JOB_SECONDS="3",
        PYTHONPATH=str(ROOT),
    )
    command = [sys.executable, "-m", "flask", "--app", "tests.fault_scheduler_app"]
    return subprocess.Popen(
        [*command, "umetrics", "scheduler", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(process: subprocess.Popen[str]) -> None:
    """Interrupt a scheduler and collect its output; one that does not stop in 60 s is killed
    (so its pipe is closed here, not reported as a leak by a later test) and fails the test."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        message = f"the scheduler did not stop on SIGINT; it printed:\n{output}"
        raise AssertionError(message) from None


def _wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_killed_scheduler_leader_is_replaced_and_the_job_completes_once(
    pg_url: str, tmp_path: Path
) -> None:
    from datetime import datetime, timedelta, timezone

    from flask_umetrics.db.tables import snapshot_runs, stat_readings

    now = datetime.now(timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight - now < timedelta(seconds=60):  # the daily period must not change mid-test
        time.sleep((midnight - now).total_seconds() + 1)
    today = datetime.now(timezone.utc).strftime("%Y-%m-%dT00:00:00Z")
    lease = 5.0
    leader = _scheduler(pg_url, tmp_path, "--once")
    standby = None
    try:
        _wait_for(lambda: (tmp_path / f"started-{leader.pid}").exists(), 30, "the leader's job")
        standby = _scheduler(pg_url, tmp_path, "--duration", "40")
        time.sleep(2)  # the standby is up, and not the leader
        assert standby.poll() is None
        assert not (tmp_path / f"started-{standby.pid}").exists()
        leader.kill()
        killed_at = datetime.now(timezone.utc)
        leader.communicate(timeout=10)

        engine = create_umetrics_engine(pg_url)
        try:

            def finished() -> bool:
                with engine.connect() as connection:
                    statuses = connection.execute(select(job_runs.c.status)).scalars().all()
                return statuses == ["succeeded"]

            _wait_for(finished, 30, "the standby to complete the job")
            with engine.connect() as connection:
                run = connection.execute(select(job_runs)).one()
                snapshots = connection.execute(select(func.count()).select_from(snapshot_runs))
                readings = connection.execute(
                    select(stat_readings.c.metric_key, stat_readings.c.value)
                ).all()
                snapshot_count = snapshots.scalar_one()
        finally:
            engine.dispose()
    finally:
        for process in (leader, standby):
            if process is not None:
                _stop(process)

    assert run.job_key == "snapshot:acme"
    assert run.period == today
    assert run.owner.split(":")[1] == str(standby.pid)
    assert run.attempts == 2  # the dead leader's claim, then the standby's takeover
    # The standby took over once the dead leader's claim lapsed: within the lease (plus one
    # check interval of lease / 3).
    taken_over = run.started_at.replace(tzinfo=timezone.utc) - killed_at
    assert timedelta(0) < taken_over <= timedelta(seconds=lease + lease / 3 + 1)
    # The job completed once for the period: one snapshot, one reading.
    assert snapshot_count == 1
    assert readings == [("slow", 42)]
    assert sorted(p.name for p in tmp_path.glob("started-*")) == sorted(
        [f"started-{leader.pid}", f"started-{standby.pid}"]
    )
