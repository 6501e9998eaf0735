"""Load test: sustained REST ingestion through gunicorn with concurrent dashboard queries.

``make load`` (or ``python bench/load.py --duration 60 --workers 4``) starts gunicorn with N
workers on a loopback port, serving this module's ``create_app()`` on PostgreSQL, then for the
given duration runs ingestion clients (batches of 50 events, each with its own uuid) and query
clients (``GET /api/query/dashboard``, ``/api/query/trends`` and the admin overview page with a
``metrics.view`` key in ``Authorization: Bearer``), each thread one request at a time.

Afterwards it checks that the events stored for the run's scope == the events the answers
accepted == the distinct uuids of the acknowledged batches, and that no request failed
(anything but 200, or a dropped connection). It prints a table of requests, events/s, errors and
p50/p95/p99 latency for ingestion and queries; the exit status is 1 when a check fails.
``tests/test_load.py`` runs a short version (about 10 s, 2 workers) in the suite.

The database (``--database-url``, default ``UMETRICS_LOAD_DATABASE_URL`` or the
``umetrics_load`` database on 127.0.0.1) is migrated if needed; each run writes to a scope of its
own (``load-<random>``), so runs never mix.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/umetrics_load"
DATABASE_ENV = "UMETRICS_LOAD_DATABASE_URL"
API = "/umetrics/api"
EVENT_NAMES = ("page_view", "click", "signup", "search", "purchase")


def create_app() -> Flask:
    """The app gunicorn serves: the extension alone, no scheduler, keys checked per request."""
    from flask_umetrics import UMetrics

    app = Flask(__name__)
    app.config.update(
        UMETRICS_DATABASE_URL=os.environ.get(DATABASE_ENV, DEFAULT_DATABASE_URL),
        UMETRICS_SCHEDULER="off",
        UMETRICS_BUILTIN_COLLECTORS=False,
        # Every load client sends from 127.0.0.1 as fast as it can: far past the per-IP budget
        # of a browser (UMETRICS_RATELIMIT_INGEST), which is not what this test measures.
        UMETRICS_RATELIMIT_INGEST="1000000 per minute",
        UMETRICS_RATELIMIT_PER_KEY="1000000 per minute",
        # The dashboard refuses to serve without one; clients use API keys, never sessions, so
        # each worker may have its own.
        SECRET_KEY=secrets.token_hex(32),
    )
    UMetrics(app)
    return app


@dataclass
class Lane:
    """What one kind of client saw: latencies of answered requests and the failures."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    events: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, seconds: float, error: str | None, events: int = 0) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.events += events
            if error is not None:
                self.errors.append(error)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=1000, method="inclusive")[int(q * 10) - 1]


@dataclass
class LoadResult:
    duration: float
    workers: int
    ingest: Lane
    query: Lane
    sent_uuids: int
    acknowledged_uuids: int
    accepted: int
    duplicates: int
    stored: int
    stored_distinct: int

    @property
    def errors(self) -> int:
        return len(self.ingest.errors) + len(self.query.errors)

    @property
    def consistent(self) -> bool:
        """Every acknowledged event stored once, and nothing else stored."""
        return (
            self.stored == self.stored_distinct == self.accepted == self.acknowledged_uuids
            and self.duplicates == 0
        )

    def table(self) -> str:
        lines = [
            f"Load: {self.duration:.0f} s, gunicorn with {self.workers} workers, PostgreSQL",
            "",
            "| clients | requests | events/s | errors | p50 ms | p95 ms | p99 ms |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for lane in (self.ingest, self.query):
            rate = f"{lane.events / self.duration:,.0f}" if lane.events else "-"
            lines.append(
                f"| {lane.name} | {len(lane.latencies):,} | {rate} | {len(lane.errors)} | "
                f"{lane.percentile(50) * 1000:.1f} | {lane.percentile(95) * 1000:.1f} | "
                f"{lane.percentile(99) * 1000:.1f} |"
            )
        lines += [
            "",
            f"events sent {self.sent_uuids:,}; acknowledged {self.acknowledged_uuids:,}; "
            f"accepted {self.accepted:,} (duplicates {self.duplicates}); stored {self.stored:,} "
            f"({self.stored_distinct:,} distinct uuids) -> "
            + ("OK" if self.consistent and not self.errors else "FAILED"),
        ]
        for lane in (self.ingest, self.query):
            for error in lane.errors[:5]:
                lines.append(f"  {lane.name} error: {error}")
        return "\n".join(lines)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare(database_url: str, scope_id: str) -> tuple[str, str]:
    """Migrate the database and create the run's (ingest key, view key)."""
    from flask_umetrics import create_api_key
    from flask_umetrics.db import migrate
    from flask_umetrics.db.engine import create_umetrics_engine

    engine = create_umetrics_engine(database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    os.environ[DATABASE_ENV] = database_url
    app = create_app()
    with app.app_context():
        keys = create_api_key(scope_id, "ingest"), create_api_key(scope_id, "metrics.view")
    app.extensions["umetrics"].engine.dispose()
    return keys


def start_gunicorn(database_url: str, workers: int, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, **{DATABASE_ENV: database_url})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",  # a slow dashboard query is measured, not killed after 30 s
            "120",
            "--log-level",
            "warning",
            "bench.load:create_app()",
        ],
        cwd=ROOT,
        env=env,
    )
    wait_until_serving(process, port)
    return process


def wait_until_serving(process: subprocess.Popen[bytes], port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", API + "/openapi.json")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    raise RuntimeError(f"gunicorn did not answer on port {port} within {seconds:.0f} s")


def stop_gunicorn(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _request(
    port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@dataclass
class IngestTally:
    sent: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    accepted: int = 0
    duplicates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _ingest_client(
    port: int,
    key: str,
    scope_id: str,
    batch_size: int,
    lane: Lane,
    tally: IngestTally,
    stop: threading.Event,
    seed: int,
) -> None:
    rng = random.Random(seed)
    headers = {"Content-Type": "application/json", "X-UMetrics-Key": key}
    while not stop.is_set():
        batch = [
            {
                "event": rng.choice(EVENT_NAMES),
                "distinct_id": f"user-{rng.randrange(2000)}",
                "uuid": str(uuid.uuid4()),
                "properties": {"plan": rng.choice(("free", "pro")), "amount": rng.randrange(100)},
            }
            for _ in range(batch_size)
        ]
        uuids = [event["uuid"] for event in batch]
        body = json.dumps({"scope_id": scope_id, "events": batch}).encode()
        with tally.lock:
            tally.sent.update(uuids)
        started = time.perf_counter()
        try:
            status, data = _request(port, "POST", API + "/events", body, headers)
        except (OSError, http.client.HTTPException) as exc:
            lane.record(time.perf_counter() - started, f"connection: {exc!r}")
            continue
        elapsed = time.perf_counter() - started
        if status != 200:
            lane.record(elapsed, f"{status}: {data[:200]!r}")
            continue
        answer = json.loads(data)
        lane.record(elapsed, None, answer["accepted"])
        with tally.lock:
            tally.acknowledged.update(uuids)
            tally.accepted += answer["accepted"]
            tally.duplicates += answer["duplicates"]


def _query_client(
    port: int, key: str, scope_id: str, lane: Lane, stop: threading.Event, seed: int
) -> None:
    rng = random.Random(seed)
    paths = [
        f"{API}/query/dashboard?scope_id={scope_id}",
        f"{API}/query/trends?scope_id={scope_id}&event=page_view&interval=hour&math=unique_persons",
        f"{API}/query/trends?scope_id={scope_id}&interval=day&breakdown=plan",
        f"/umetrics/admin/?scope_id={scope_id}",
    ]
    headers = {"Authorization": f"Bearer {key}"}
    while not stop.is_set():
        path = rng.choice(paths)
        started = time.perf_counter()
        try:
            status, data = _request(port, "GET", path, None, headers)
        except (OSError, http.client.HTTPException) as exc:
            lane.record(time.perf_counter() - started, f"{path}: connection: {exc!r}")
            continue
        error = None if status == 200 else f"{path}: {status}: {data[:200]!r}"
        lane.record(time.perf_counter() - started, error)


def _analyze(database_url: str, every: float, stop: threading.Event) -> None:
    """Refresh the planner's statistics every ``every`` seconds, as autovacuum does on a busy
    table (it waits up to a minute: meanwhile, tables that grew from nearly empty get plans made
    for a few rows, and the dashboard query takes tens of seconds)."""
    from sqlalchemy import text

    from flask_umetrics.db.engine import create_umetrics_engine
    from flask_umetrics.db.tables import metadata

    engine = create_umetrics_engine(database_url)
    names = ", ".join(table.name for table in metadata.sorted_tables)
    try:
        while True:
            with engine.begin() as connection:
                connection.execute(text(f"ANALYZE {names}"))
            if stop.wait(every):
                return
    finally:
        engine.dispose()


def stored_counts(database_url: str, scope_id: str) -> tuple[int, int]:
    from sqlalchemy import func, select

    from flask_umetrics.db.engine import create_umetrics_engine
    from flask_umetrics.db.tables import events

    engine = create_umetrics_engine(database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                select(func.count(), func.count(events.c.uuid.distinct())).where(
                    events.c.scope_id == scope_id
                )
            ).one()
    finally:
        engine.dispose()
    return int(row[0]), int(row[1])


def run_load(
    database_url: str,
    *,
    duration: float = 60,
    workers: int = 4,
    ingest_clients: int = 8,
    query_clients: int = 2,
    batch_size: int = 50,
    analyze_every: float = 5,
    progress: Callable[[str], None] = _log,
) -> LoadResult:
    """Run the load against a fresh gunicorn and check the counts (see the module docstring)."""
    scope_id = f"load-{uuid.uuid4().hex[:10]}"
    ingest_key, view_key = prepare(database_url, scope_id)
    port = _free_port()
    progress(f"gunicorn: {workers} workers on 127.0.0.1:{port}, scope {scope_id}")
    server = start_gunicorn(database_url, workers, port)
    ingest, query, tally = Lane("ingest (POST /api/events)"), Lane("queries (GET)"), IngestTally()
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_ingest_client,
            args=(port, ingest_key, scope_id, batch_size, ingest, tally, stop, n),
        )
        for n in range(ingest_clients)
    ] + [
        threading.Thread(target=_query_client, args=(port, view_key, scope_id, query, stop, n))
        for n in range(query_clients)
    ]
    if analyze_every > 0:
        threads.append(threading.Thread(target=_analyze, args=(database_url, analyze_every, stop)))
    try:
        progress(f"{ingest_clients} ingestion and {query_clients} query clients for {duration} s")
        started = time.monotonic()
        for thread in threads:
            thread.start()
        stop.wait(duration)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        stop_gunicorn(server)
    stored, distinct = stored_counts(database_url, scope_id)
    return LoadResult(
        duration=elapsed,
        workers=workers,
        ingest=ingest,
        query=query,
        sent_uuids=len(tally.sent),
        acknowledged_uuids=len(tally.acknowledged),
        accepted=tally.accepted,
        duplicates=tally.duplicates,
        stored=stored,
        stored_distinct=distinct,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get(DATABASE_ENV, DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--ingest-clients", type=int, default=8)
    parser.add_argument("--query-clients", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument(
        "--analyze-every",
        type=float,
        default=5.0,
        help="seconds between ANALYZE runs during the load (0: leave it to autovacuum)",
    )
    args = parser.parse_args(argv)
    result = run_load(
        args.database_url,
        duration=args.duration,
        workers=args.workers,
        ingest_clients=args.ingest_clients,
        query_clients=args.query_clients,
        batch_size=args.batch_size,
        analyze_every=args.analyze_every,
    )
    print(result.table())
    return 0 if result.consistent and not result.errors else 1


if __name__ == "__main__":
    sys.exit(main())
