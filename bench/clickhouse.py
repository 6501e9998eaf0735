"""The ClickHouse rows of ``make bench``: loading the bench data into ClickHouse (embedded chdb,
or the server ``--clickhouse-url`` names), the report questions on it (``bench/analytics.py``
runs them; a question whose report answers 501 shows "not ported"), and REST ingestion into it
against raw clickhouse-connect inserts of the same rows in the same batches of 100 from the same
number of client threads.

chdb opens one data directory per process, and a process forked after chdb was loaded hangs. So
the report data lives in one directory opened by this process, and ingestion uses a second
directory opened only by child processes started with exec (never a fork of this one): the raw
inserts and the counts by ``python -m bench.clickhouse raw|count`` and the REST run by
``gunicorn -w 1 --threads N`` (one worker: chdb is single-process).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask

from bench.analytics import (
    INGEST_BATCH,
    INGEST_THREADS,
    ROOT,
    SCOPE,
    US,
    Dataset,
    _chunks,
    compact,
    ingest_payloads,
    log,
    send_rest,
)
from bench.ingest_app import warm_clickhouse_driver
from flask_umetrics import UMetrics, create_api_key
from flask_umetrics.engines.clickhouse.store import EVENT_COLUMNS

CH_REST_SCOPE = "bench-rest-ch"
CH_RAW_SCOPE = "bench-raw-ch"
#: Threads of the one gunicorn worker serving chdb.
WORKER_THREADS = 8


def chdb_url(directory: Path) -> str:
    return f"chdb://{directory.resolve()}"


def _client(url: str) -> Any:
    from flask_umetrics.engines.clickhouse.client import get_client, parse_clickhouse_url

    return get_client(parse_clickhouse_url(url))


def _fresh(url: str) -> Any:
    """A client on an empty, migrated umetrics schema (a chdb directory is removed first)."""
    from flask_umetrics.engines.clickhouse import schema
    from flask_umetrics.engines.clickhouse.client import parse_clickhouse_url

    parsed = parse_clickhouse_url(url)
    if parsed.embedded and parsed.path:
        shutil.rmtree(parsed.path, ignore_errors=True)
    client = _client(url)
    for (name,) in client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND startsWith(name, 'umetrics_')"
    ).result_rows:
        client.command(f"DROP TABLE IF EXISTS `{name}` SYNC")
    schema.upgrade(client)
    return client


def load_clickhouse(data: Dataset, url: str) -> float:
    """Events (``seq`` = the SQL id, as the backfill gives it), persons and the distinct-id map,
    inserted in blocks of 200,000 rows through clickhouse-connect; the schema is not timed."""
    from flask_umetrics.engines.clickhouse.mirror import MAP_COLUMNS, PERSON_COLUMNS

    client = _fresh(url)
    began = time.perf_counter()
    settings = {"async_insert": 0}
    done = 0
    person_of = dict(data.distinct_ids)  # each event carries its person, as the backfill stores it
    for chunk in _chunks(data.events, 200_000):
        rows = [[SCOPE, u, e, d, ts, None, a, p, person_of[d], i] for i, u, e, d, ts, a, p in chunk]
        client.insert("umetrics_events", rows, column_names=EVENT_COLUMNS, settings=settings)
        done += len(chunk)
        log(f"  clickhouse: {done:,} / {len(data.events):,} events")
    persons = [[SCOPE, i, props, ident, at, 0, 1] for i, at, ident, props in data.persons]
    client.insert("umetrics_persons", persons, column_names=PERSON_COLUMNS, settings=settings)
    ids = [[SCOPE, d, p, 0, 1] for d, p in data.distinct_ids]
    client.insert("umetrics_person_distinct_ids", ids, column_names=MAP_COLUMNS, settings=settings)
    return time.perf_counter() - began


def make_clickhouse_app(sql_url: str, url: str) -> Flask:
    """An app reading events from ``url``, persons and keys from ``sql_url``."""
    app = Flask("bench_clickhouse")
    app.config.update(
        UMETRICS_DATABASE_URL=sql_url,
        UMETRICS_SCHEDULER="off",
        UMETRICS_EVENT_STORE="clickhouse",
        UMETRICS_CLICKHOUSE_URL=url,
    )
    UMetrics(app)
    return app


# -- ingestion ---------------------------------------------------------------------------------


@dataclass
class ClickHouseIngest:
    events: int
    rest_seconds: float
    raw_seconds: float
    stored: int
    distinct_uuids: int
    raw_stored: int
    resend_accepted: int
    resend_duplicates: int
    errors: list[str]

    @property
    def rest_rate(self) -> float:
        return self.events / self.rest_seconds

    @property
    def raw_rate(self) -> float:
        return self.events / self.raw_seconds

    @property
    def exact(self) -> bool:
        return (
            self.stored == self.events == self.distinct_uuids == self.raw_stored
            and self.resend_accepted == 0
            and self.resend_duplicates == INGEST_BATCH
            and not self.errors
        )


def _child(*args: str) -> dict[str, Any]:
    """``python -m bench.clickhouse ARGS`` in a new process; its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.clickhouse", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.clickhouse {args[0]} failed: {done.stderr[-2000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


def run_clickhouse_ingest(sql_url: str, m: int, work_dir: Path) -> ClickHouseIngest:
    """Raw inserts into a fresh chdb directory (a child process), then REST into the same
    directory through gunicorn, then the counts (another child)."""
    url = chdb_url(work_dir / "chdb-ingest")
    events = ingest_payloads(m)
    rows_path = work_dir / "clickhouse-raw-rows.json"
    rows_path.write_text(json.dumps(events), encoding="utf-8")
    log(f"  raw clickhouse-connect inserts of {m:,} rows (scope {CH_RAW_SCOPE}), a child process")
    raw = _child("raw", "--url", url, "--rows", str(rows_path))
    log(f"    {raw['seconds']:.3f} s, {m / raw['seconds']:,.0f} events/s")

    key_app = Flask("bench_clickhouse_keys")
    key_app.config.update(UMETRICS_DATABASE_URL=sql_url, UMETRICS_SCHEDULER="off")
    UMetrics(key_app)
    with key_app.app_context():
        key = create_api_key(CH_REST_SCOPE, "ingest", name="bench-clickhouse")
    key_app.extensions["umetrics"].engine.dispose()
    headers = {
        "Content-Type": "application/json",
        "X-UMetrics-Key": key,
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    }
    bodies = [
        json.dumps({"scope_id": CH_REST_SCOPE, "events": list(batch)}).encode()
        for batch in _chunks(events, INGEST_BATCH)
    ]
    env = {"UMETRICS_BENCH_DATABASE_URL": sql_url, "UMETRICS_BENCH_CLICKHOUSE_URL": url}
    sent = send_rest(
        bodies,
        headers,
        env,
        work_dir / "gunicorn-clickhouse.log",
        workers=1,
        worker_threads=WORKER_THREADS,
    )
    counted = _child("count", "--url", url)
    return ClickHouseIngest(
        events=m,
        rest_seconds=sent.seconds,
        raw_seconds=raw["seconds"],
        stored=counted[CH_REST_SCOPE][0],
        distinct_uuids=counted[CH_REST_SCOPE][1],
        raw_stored=counted[CH_RAW_SCOPE][0],
        resend_accepted=sent.resend["accepted"],
        resend_duplicates=sent.resend["duplicates"],
        errors=sent.errors,
    )


def _raw_rows(events: list[dict[str, Any]]) -> list[list[Any]]:
    """The rows the REST path stores for these events (its validation's output, by hand)."""
    from flask_umetrics.engines.clickhouse.sequence import next_values

    sequence = next_values(len(events))
    return [
        [
            CH_RAW_SCOPE,
            e["uuid"],
            e["event"],
            e["distinct_id"],
            int(datetime.fromisoformat(e["timestamp"]).timestamp() * US),
            None,
            e["active"],
            compact(e["properties"]),
            index + 1,  # a person id per row: the REST path stores its person's
            seq,
        ]
        for index, (e, seq) in enumerate(zip(events, sequence, strict=True))
    ]


def _raw_insert(url: str, rows_path: Path) -> dict[str, Any]:
    """Batches of ``INGEST_BATCH`` from ``INGEST_THREADS`` threads, synchronous inserts."""
    client = _fresh(url)
    rows = _raw_rows(json.loads(rows_path.read_text(encoding="utf-8")))
    batches = list(_chunks(rows, INGEST_BATCH))
    lock = threading.Lock()
    position = {"next": 0}
    settings = {"async_insert": 0}
    warm_clickhouse_driver()  # as the REST worker does before serving

    def insert() -> None:
        while True:
            with lock:
                index = position["next"]
                position["next"] += 1
            if index >= len(batches):
                return
            client.insert(
                "umetrics_events", batches[index], column_names=EVENT_COLUMNS, settings=settings
            )

    began = time.perf_counter()
    threads = [threading.Thread(target=insert) for _ in range(INGEST_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"seconds": time.perf_counter() - began}


def _count(url: str) -> dict[str, Any]:
    result = _client(url).query(
        "SELECT scope_id, count(), uniqExact(uuid) FROM umetrics_events GROUP BY scope_id"
    )
    counts = {scope: [int(n), int(u)] for scope, n, u in result.result_rows}
    for scope in (CH_REST_SCOPE, CH_RAW_SCOPE):
        counts.setdefault(scope, [0, 0])
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bench.clickhouse child processes")
    parser.add_argument("command", choices=["raw", "count"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rows", type=Path)
    args = parser.parse_args(argv)
    answer = _raw_insert(args.url, args.rows) if args.command == "raw" else _count(args.url)
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
