#!/usr/bin/env python
"""Analytics benchmark: our reports on SQLite and PostgreSQL, DuckDB on the same rows, REST ingest.

    python bench/analytics.py [--events N] [--persons P] [--days D] [--skip-sqlite]
                              [--skip-ingest] [--ingest-events M] [--repeat R]

1. Generates N events over P persons and D days (deterministic, ``random.Random(seed)``).
2. Loads them into a fresh SQLite file, a wiped ``umetrics_bench`` PostgreSQL database (schema by
   ``flask_umetrics.db.migrate.upgrade``, rows by ``executemany`` / ``COPY``) and DuckDB (CSV).
3. Times volume, DAU, WAU, a 3-step funnel, 8 weekly retention cohorts and sessions through the
   real report functions, and the same questions as hand-written DuckDB SQL; checks the answers
   are equal.
4. Times REST ingestion (batches of 100 through the app served by gunicorn) against a raw
   ``executemany`` of the same rows.

Progress goes to stderr; the Markdown tables go to stdout. Every figure is meant to be read as a
ratio to the baseline measured in the same run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import http.client
import importlib
import json
import math
import os
import queue
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import psycopg
from flask import Flask

from flask_umetrics import UMetrics, create_api_key
from flask_umetrics.db import migrate
from flask_umetrics.db.engine import create_umetrics_engine
from flask_umetrics.errors import NotAvailableOnClickHouse
from flask_umetrics.queries.active import active_user_series
from flask_umetrics.queries.context import report_context
from flask_umetrics.queries.sessions import session_summary
from flask_umetrics.queries.trends import volume

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/umetrics_bench"
WORK_DIR = Path("/tmp/umetrics-bench")
SCOPE = "bench"
REST_SCOPE = "bench-rest"
RAW_SCOPE = "bench-raw"
SEED = 20250106

US = 1_000_000
HOUR_US = 3600 * US
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US
#: Monday 2025-01-06 00:00 UTC: fixed, so every run generates the same rows.
START = datetime(2025, 1, 6, tzinfo=timezone.utc)
START_US = int(START.timestamp()) * US

SESSION_TIMEOUT_US = 1800 * US
FUNNEL_STEPS = ("signed_up", "activated", "purchased")
FUNNEL_WINDOW_S = 14 * 86400
RETENTION_PERIODS = 8
RETENTION_COHORTS = 8
INGEST_BATCH = 100
INGEST_THREADS = 4
PAGEVIEW = "$pageview"
PATHS = ("/", "/pricing", "/docs", "/blog", "/app", "/app/settings", "/app/reports", "/login")
PLANS = ("free", "pro", "team")
PRICES = {"free": 0.0, "pro": 29.0, "team": 99.0}
#: Active events that are not part of the funnel, with their cumulative probability.
BROWSING = ((0.80, PAGEVIEW), (0.88, "clicked_button"), (0.94, "viewed_pricing"), (1.0, "searched"))
SERVER_EVENTS = ("email_sent", "invoice_created")

#: One ``umetrics_events`` row: id, uuid, event, distinct_id, ts (µs), active, properties (JSON).
EventRow = tuple[int, str, str, str, int, bool, str]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def plain_dsn(url: str) -> str:
    """A libpq URL from a SQLAlchemy one."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# -- data generation ---------------------------------------------------------------------------


@dataclass
class Dataset:
    events: list[EventRow]
    #: id, created_at (µs), is_identified, properties (JSON)
    persons: list[tuple[int, int, bool, str]]
    #: distinct_id, person_id
    distinct_ids: list[tuple[str, int]]
    start_us: int
    end_us: int


def _allocate(weights: Sequence[float], total: int, rng: random.Random) -> list[int]:
    """Split ``total`` events over persons in proportion to ``weights``, at least one each."""
    scale = total / sum(weights)
    budgets = [max(1, int(w * scale)) for w in weights]
    diff = total - sum(budgets)
    people = range(len(weights))
    while diff > 0:
        for person in rng.choices(people, weights=weights, k=diff):
            budgets[person] += 1
        diff = total - sum(budgets)
    while diff < 0:
        person = rng.randrange(len(budgets))
        if budgets[person] > 1:
            budgets[person] -= 1
            diff += 1
    return budgets


def generate(n_events: int, n_persons: int, days: int, seed: int = SEED) -> Dataset:
    """Persons arrive over the period (more later: growth); each has a lifetime (most churn within
    weeks, some stay), sessions of a few events 1-60 s apart (3 % of gaps over 30 min), a habit of
    returning on the same weekday, a sign-up -> activation -> purchase funnel with drop-off and
    delays (some beyond 14 days), repeat purchases, anonymous ids merged into users on several
    devices, and ~10 % server events (``active=false``)."""
    if n_persons < 1 or n_events < n_persons:
        raise SystemExit("need at least one person and at least as many events as persons")
    rng = random.Random(seed)
    start, end = START_US, START_US + days * DAY_US
    span = end - start
    arrivals: list[int] = []
    lifetimes: list[int] = []
    weights: list[float] = []
    for _ in range(n_persons):
        arrival = start + int(rng.random() ** 0.75 * span * 0.98)
        remaining = end - arrival
        loyal = rng.random() < 0.15
        life = (
            remaining if loyal else min(remaining, int(rng.expovariate(1 / 21) * DAY_US) + HOUR_US)
        )
        arrivals.append(arrival)
        lifetimes.append(life)
        weights.append(rng.lognormvariate(0, 0.8) * (0.2 + life / span))
    budgets = _allocate(weights, n_events, rng)

    pageview_json = {path: compact({"path": path}) for path in PATHS}
    raw: list[tuple[int, int, str, str, bool, str]] = []  # ts, person, event, distinct id, ...
    persons: list[tuple[int, int, bool, str]] = []
    distinct_ids: list[tuple[str, int]] = []
    for person in range(n_persons):
        person_id = person + 1
        arrival, life, budget = arrivals[person], lifetimes[person], budgets[person]
        n_server = sum(1 for _ in range(budget) if rng.random() < 0.10)
        n_server = min(n_server, budget - 1)
        n_active = budget - n_server

        lengths: list[int] = []
        left = n_active
        while left > 0:
            length = 1 if rng.random() < 0.3 else 2 + int(rng.expovariate(1 / 5))
            lengths.append(min(length, left))
            left -= lengths[-1]
        habit = rng.random() < 0.5
        life_weeks = life // WEEK_US
        latest = max(arrival, end - 2 * HOUR_US)
        starts = [arrival]
        for _ in range(len(lengths) - 1):
            if habit and life_weeks >= 1 and rng.random() < 0.7:
                moment = arrival + rng.randint(1, life_weeks) * WEEK_US
                moment += int(rng.gauss(0, 2 * HOUR_US))
            else:
                moment = arrival + int(rng.random() * life)
            starts.append(min(max(moment, arrival), latest))
        starts.sort()
        times: list[int] = []
        for session_start, length in zip(starts, lengths, strict=True):
            moment = session_start
            for index in range(length):
                if index:
                    if rng.random() < 0.03:
                        gap = 31 * 60 + rng.random() * 90 * 60
                    else:
                        gap = 1 + rng.expovariate(1 / 50)
                    moment += int(gap * US)
                times.append(moment if moment < end else end - 1 - rng.randrange(HOUR_US))
        times.sort()

        names: list[str] = []
        props: list[str] = []
        for _ in range(n_active):
            pick = rng.random()
            name = next(event for bound, event in BROWSING if pick < bound)
            names.append(name)
            props.append(pageview_json[rng.choice(PATHS)])

        plan = rng.choices(PLANS, weights=(6, 3, 1))[0]
        identified = n_active >= 2 and rng.random() < 0.42
        signup = n_active
        if identified:
            signup = rng.randrange(min(n_active, 8))
            names[signup], props[signup] = "signed_up", compact({"plan": "free"})
            if rng.random() < 0.6:
                target = times[signup] + int(rng.expovariate(1 / (2.5 * 86400)) * US)
                activated = bisect.bisect_left(times, target, lo=signup + 1)
                if activated < n_active:
                    names[activated] = "activated"
                    props[activated] = compact({"plan": "free"})
                    if rng.random() < 0.45:
                        target = times[activated] + int(rng.expovariate(1 / (5 * 86400)) * US)
                        bought = bisect.bisect_left(times, target, lo=activated + 1)
                        if bought < n_active:
                            value = {"plan": plan, "value": PRICES[plan] or 9.0}
                            names[bought], props[bought] = "purchased", compact(value)
                            if rng.random() < 0.25:  # a repeat purchase 1-4 weeks later
                                target = times[bought] + int(rng.uniform(7, 30) * DAY_US)
                                again = bisect.bisect_left(times, target, lo=bought + 1)
                                if again < n_active:
                                    names[again], props[again] = "purchased", compact(value)
            if rng.random() < 0.03 and signup + 1 < n_active:  # signs up again on another device
                later = rng.randrange(signup + 1, n_active)
                if names[later] not in FUNNEL_STEPS:
                    names[later] = "signed_up"
                    props[later] = compact({"plan": "free"})
        elif n_active > 1 and rng.random() < 0.02:  # a guest checkout: purchase without the steps
            guest = rng.randrange(n_active)
            names[guest], props[guest] = "purchased", compact({"plan": "pro", "value": 29.0})

        devices = [f"anon-{person_id}-0"]
        if identified:
            devices += [f"anon-{person_id}-{k}" for k in (1, 2) if rng.random() < 0.3 / k]
        user = f"user-{person_id}"
        for index in range(n_active):
            if not identified:
                distinct = devices[0]
            elif index < signup:
                distinct = devices[0] if rng.random() < 0.8 else rng.choice(devices)
            else:
                distinct = user if rng.random() < 0.85 else rng.choice(devices)
            raw.append((times[index], person_id, names[index], distinct, True, props[index]))
        for _ in range(n_server):
            moment = arrival + int(rng.random() * (end - arrival))
            name = SERVER_EVENTS[1] if identified and rng.random() < 0.5 else SERVER_EVENTS[0]
            amount = compact({"plan": plan, "value": round(rng.random() * 100, 2)})
            raw.append((moment, person_id, name, user if identified else devices[0], False, amount))

        for distinct in [*devices, user] if identified else devices:
            distinct_ids.append((distinct, person_id))
        traits = {"plan": plan, "email": f"user{person_id}@example.com"} if identified else {}
        persons.append((person_id, arrival, identified, compact(traits)))

    raw.sort(key=lambda row: (row[0], row[1]))
    rows: list[EventRow] = [
        (i + 1, str(uuid.UUID(int=rng.getrandbits(128), version=4)), e, d, ts, a, p)
        for i, (ts, _person, e, d, a, p) in enumerate(raw)
    ]
    return Dataset(rows, persons, distinct_ids, start, end)


def describe(data: Dataset) -> str:
    counts: dict[str, int] = {}
    inactive = 0
    for row in data.events:
        counts[row[2]] = counts.get(row[2], 0) + 1
        inactive += not row[5]
    top = ", ".join(f"{name} {n:,}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    identified = sum(1 for p in data.persons if p[2])
    return (
        f"{len(data.events):,} events ({inactive:,} active=false; {top}), "
        f"{len(data.persons):,} persons ({identified:,} identified), "
        f"{len(data.distinct_ids):,} distinct ids"
    )


# -- loading -----------------------------------------------------------------------------------


def _micros_to_text(micros: int, sqlite_style: bool) -> str:
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)
    if sqlite_style:  # SQLAlchemy's SQLite DateTime storage: naive UTC text
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment.isoformat()


def _chunks(rows: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for offset in range(0, len(rows), size):
        yield rows[offset : offset + size]


def load_sqlite(data: Dataset, path: Path) -> float:
    """Fresh file, schema by ``migrate.upgrade``, rows by ``executemany`` in big transactions."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = create_umetrics_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    began = time.perf_counter()
    connection = sqlite3.connect(path)
    try:
        insert_event = (
            "INSERT INTO umetrics_events (id, scope_id, uuid, event, distinct_id, ts, session_id,"
            f" active, properties) VALUES (?, '{SCOPE}', ?, ?, ?, ?, NULL, ?, ?)"
        )
        done = 0
        for chunk in _chunks(data.events, 200_000):
            with connection:
                connection.executemany(insert_event, chunk)
            done += len(chunk)
            log(f"  sqlite: {done:,} / {len(data.events):,} events")
        with connection:
            connection.executemany(
                "INSERT INTO umetrics_persons (id, scope_id, properties, created_at, is_identified)"
                f" VALUES (?, '{SCOPE}', ?, ?, ?)",
                [
                    (i, props, _micros_to_text(at, True), ident)
                    for i, at, ident, props in data.persons
                ],
            )
            connection.executemany(
                "INSERT INTO umetrics_person_distinct_ids (scope_id, distinct_id, person_id)"
                f" VALUES ('{SCOPE}', ?, ?)",
                data.distinct_ids,
            )
        log(f"  sqlite: {len(data.persons):,} persons, {len(data.distinct_ids):,} distinct ids")
        connection.execute("ANALYZE")
    finally:
        connection.close()
    return time.perf_counter() - began


def wipe_postgres(url: str) -> None:
    """Drop every ``umetrics_*`` table of the bench database, then create the schema."""
    with psycopg.connect(plain_dsn(url), autocommit=True, connect_timeout=10) as connection:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                " AND tablename LIKE 'umetrics\\_%'"
            )
        ]
        if names:
            connection.execute("DROP TABLE " + ", ".join(f'"{n}"' for n in names) + " CASCADE")
    engine = create_umetrics_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def load_postgres(data: Dataset, url: str) -> float:
    """``COPY`` into the three tables, move the id sequences past the ids used, VACUUM ANALYZE."""
    wipe_postgres(url)
    began = time.perf_counter()
    with psycopg.connect(plain_dsn(url), connect_timeout=10) as connection:
        with connection.cursor() as cursor:
            columns = "id, scope_id, uuid, event, distinct_id, ts, session_id, active, properties"
            with cursor.copy(f"COPY umetrics_events ({columns}) FROM STDIN") as copy:
                for count, (i, u, e, d, ts, a, p) in enumerate(data.events, 1):
                    copy.write_row((i, SCOPE, u, e, d, ts, None, a, p))
                    if count % 250_000 == 0:
                        log(f"  postgresql: {count:,} / {len(data.events):,} events")
            columns = "id, scope_id, properties, created_at, is_identified"
            with cursor.copy(f"COPY umetrics_persons ({columns}) FROM STDIN") as copy:
                for i, at, ident, props in data.persons:
                    copy.write_row((i, SCOPE, props, _micros_to_text(at, False), ident))
            columns = "scope_id, distinct_id, person_id"
            with cursor.copy(f"COPY umetrics_person_distinct_ids ({columns}) FROM STDIN") as copy:
                for distinct, person in data.distinct_ids:
                    copy.write_row((SCOPE, distinct, person))
            for table in ("umetrics_events", "umetrics_persons"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT max(id) FROM {table}))"
                )
        connection.commit()
        log(f"  postgresql: {len(data.persons):,} persons, {len(data.distinct_ids):,} distinct ids")
        connection.autocommit = True
        for table in ("umetrics_events", "umetrics_persons", "umetrics_person_distinct_ids"):
            connection.execute(f"VACUUM (ANALYZE) {table}")
    return time.perf_counter() - began


def load_duckdb(data: Dataset, directory: Path) -> tuple[duckdb.DuckDBPyConnection, float]:
    """Write the rows to CSV and let DuckDB read them (it has no faster path without pandas or
    pyarrow); the time includes writing the CSV."""
    began = time.perf_counter()
    events_csv, ids_csv = directory / "events.csv", directory / "distinct_ids.csv"
    with events_csv.open("w", newline="") as handle:
        csv.writer(handle).writerows(data.events)
    with ids_csv.open("w", newline="") as handle:
        csv.writer(handle).writerows(data.distinct_ids)
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE events AS SELECT id, uuid, event, distinct_id, ts,"
        " NULL::VARCHAR AS session_id, active, properties"
        f" FROM read_csv('{events_csv}', header = false, auto_detect = false, columns = {{"
        "'id': 'BIGINT', 'uuid': 'VARCHAR', 'event': 'VARCHAR', 'distinct_id': 'VARCHAR',"
        " 'ts': 'BIGINT', 'active': 'BOOLEAN', 'properties': 'VARCHAR'})"
    )
    connection.execute(
        "CREATE TABLE pdi AS SELECT * FROM read_csv("
        f"'{ids_csv}', header = false, auto_detect = false,"
        " columns = {'distinct_id': 'VARCHAR', 'person_id': 'BIGINT'})"
    )
    loaded = connection.execute("SELECT count(*) FROM events").fetchone()
    if loaded is None or loaded[0] != len(data.events):
        raise RuntimeError(f"DuckDB loaded {loaded} events, expected {len(data.events)}")
    return connection, time.perf_counter() - began


# -- the questions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranges:
    start_us: int
    end_us: int
    days: int
    cohorts: int

    @property
    def retention_end_us(self) -> int:
        return self.start_us + self.cohorts * WEEK_US


def plain(value: Any) -> Any:
    """A report result as JSON-like data (dataclasses, pydantic models, dicts, lists)."""
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return plain(dump())
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def report_function(module: str, name: str) -> Any:
    """``module.name`` if the module defines it yet (some reports are being written)."""
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    return found if callable(found) else None


class Pending(Exception):
    """The report is not implemented yet."""


def our_volume(ranges: Ranges) -> Any:
    ctx = _context(ranges.start_us, ranges.end_us)
    return [point.count for point in volume(ctx, interval="day").series]


def our_active(ranges: Ranges, window: str) -> Any:
    ctx = _context(ranges.start_us, ranges.end_us)
    return [point.value for point in active_user_series(ctx, window=window).series]


def our_funnel(ranges: Ranges, exclusions: Sequence[Any] = ()) -> Any:
    funnel = report_function("flask_umetrics.queries.funnel", "funnel")
    step_class = report_function("flask_umetrics.queries.funnel", "FunnelStep")
    if funnel is None or step_class is None:
        raise Pending
    ctx = _context(ranges.start_us, ranges.end_us)
    steps = [step_class(name) for name in FUNNEL_STEPS]
    extra = {"exclusions": list(exclusions)} if exclusions else {}
    result = plain(funnel(ctx, steps, window_seconds=FUNNEL_WINDOW_S, **extra))
    return [
        {key: step.get(key, "<missing>") for key in FUNNEL_KEYS} for step in result.get("steps", [])
    ]


FUNNEL_KEYS = (
    "event",
    "count",
    "conversion_from_start",
    "conversion_from_previous",
    "median_seconds_from_previous",
)


def our_retention(ranges: Ranges) -> Any:
    retention = report_function("flask_umetrics.queries.retention", "retention")
    if retention is None:
        raise Pending
    ctx = _context(ranges.start_us, ranges.retention_end_us)
    result = plain(retention(ctx, period="week", periods=RETENTION_PERIODS))
    return [
        {
            "start": str(cohort.get("start", "<missing>"))[:10],
            "size": cohort.get("size", "<missing>"),
            "counts": cohort.get("counts", "<missing>"),
        }
        for cohort in result.get("cohorts", [])
    ]


def our_sessions(ranges: Ranges) -> Any:
    ctx = _context(ranges.start_us, ranges.end_us)
    return {key: value for key, value in plain(session_summary(ctx)).items() if key in SESSION_KEYS}


SESSION_KEYS = ("count", "median_duration", "mean_duration", "bounce_rate", "pageviews_per_session")


def _context(from_us: int, to_us: int) -> Any:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return report_context(
        scope_id=SCOPE,
        date_from=epoch + timedelta(microseconds=from_us),
        date_to=epoch + timedelta(microseconds=to_us),
    )


def _day_count(from_us: int, to_us: int) -> int:
    return -(-(to_us - from_us) // DAY_US)


def duck_volume(con: duckdb.DuckDBPyConnection, ranges: Ranges) -> Any:
    f, t = ranges.start_us, ranges.end_us
    rows = con.execute(
        f"SELECT (ts - {f}) // {DAY_US} AS day, count(*) FROM events"
        f" WHERE ts >= {f} AND ts < {t} GROUP BY day"
    ).fetchall()
    counts = dict(rows)
    return [counts.get(day, 0) for day in range(_day_count(f, t))]


def duck_active(con: duckdb.DuckDBPyConnection, ranges: Ranges, lead: int) -> Any:
    """Persons with an active event in days [d - lead, d], per day d of the range."""
    f, t = ranges.start_us, ranges.end_us
    reach = f - lead * DAY_US
    shown = _day_count(f, t)
    rows = con.execute(
        f"""
        WITH person_days AS (
            SELECT DISTINCT p.person_id, (e.ts - {reach}) // {DAY_US} AS day
            FROM events e JOIN pdi p ON p.distinct_id = e.distinct_id
            WHERE e.active AND e.ts >= {reach} AND e.ts < {t}
        )
        SELECT s.range AS idx, count(DISTINCT d.person_id)
        FROM range({shown}) s JOIN person_days d ON d.day BETWEEN s.range AND s.range + {lead}
        GROUP BY idx
        """
    ).fetchall()
    counts = dict(rows)
    return [float(counts.get(day, 0)) for day in range(shown)]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duck_funnel(
    con: duckdb.DuckDBPyConnection,
    ranges: Ranges,
    exclusion: tuple[str, int, int] | None = None,
) -> Any:
    """Ordered funnel, best attempt per person: for each step-1 event in range, chain the earliest
    next step at or after the previous one and within the window of the entry; a person's level is
    their best entry's; times come from the earliest entry reaching that level. ``exclusion``
    (event, 0-based from_step, to_step) first drops every attempt with that event strictly after
    its from_step event and strictly before its to_step event (or, not reached, at most the window
    after its entry)."""
    f, t = ranges.start_us, ranges.end_us
    window = FUNNEL_WINDOW_S * US
    names = ", ".join(_quote(step) for step in FUNNEL_STEPS)
    ctes = [
        f"""pe AS (
            SELECT p.person_id, e.event, e.ts
            FROM events e JOIN pdi p ON p.distinct_id = e.distinct_id
            WHERE e.event IN ({names}) AND e.ts >= {f} AND e.ts <= {t} + {window}
        )""",
        f"""c1 AS (
            SELECT DISTINCT person_id, ts AS t1 FROM pe
            WHERE event = {_quote(FUNNEL_STEPS[0])} AND ts < {t}
        )""",
    ]
    for k in range(2, len(FUNNEL_STEPS) + 1):
        kept = ", ".join(f"c.t{j}" for j in range(1, k))
        ctes.append(
            f"""c{k} AS (
            SELECT c.person_id, {kept}, min(pe.ts) AS t{k}
            FROM c{k - 1} c LEFT JOIN pe ON pe.person_id = c.person_id
                AND pe.event = {_quote(FUNNEL_STEPS[k - 1])}
                AND c.t{k - 1} IS NOT NULL AND pe.ts >= c.t{k - 1} AND pe.ts <= c.t1 + {window}
            GROUP BY c.person_id, {kept}
        )"""
        )
    n = len(FUNNEL_STEPS)
    attempts = f"c{n}"
    if exclusion is not None:
        name, a, b = exclusion[0], exclusion[1] + 1, exclusion[2] + 1
        ctes.append(
            f"""kept AS (
            SELECT * FROM c{n} c WHERE c.t{a} IS NULL OR NOT EXISTS (
                SELECT 1 FROM events e JOIN pdi p ON p.distinct_id = e.distinct_id
                WHERE p.person_id = c.person_id AND e.event = {_quote(name)} AND e.ts > c.t{a}
                    AND (e.ts < c.t{b} OR (c.t{b} IS NULL AND e.ts <= c.t1 + {window})))
        )"""
        )
        attempts = "kept"
    level = " + ".join(["1"] + [f"(t{k} IS NOT NULL)::INT" for k in range(2, n + 1)])
    ctes.append(
        f"""best AS (
            SELECT *, {level} AS level,
                row_number() OVER (PARTITION BY person_id ORDER BY {level} DESC, t1) AS rn
            FROM {attempts}
        )"""
    )
    measures = []
    for k in range(1, n + 1):
        measures.append(f"count(*) FILTER (WHERE level >= {k})")
        if k > 1:
            measures.append(
                f"quantile_cont((t{k} - t{k - 1}) / {US}.0, 0.5) FILTER (WHERE level >= {k})"
            )
    row = con.execute(
        "WITH " + ",\n".join(ctes) + f" SELECT {', '.join(measures)} FROM best WHERE rn = 1"
    ).fetchone()
    assert row is not None
    steps: list[dict[str, Any]] = []
    values = list(row)
    first = values[0]
    previous = None
    for k, name in enumerate(FUNNEL_STEPS):
        count = values.pop(0)
        median = values.pop(0) if k else None
        steps.append(
            {
                "event": name,
                "count": count,
                "conversion_from_start": count / first if first else 0.0,
                "conversion_from_previous": count / previous if previous else 1.0 if not k else 0.0,
                "median_seconds_from_previous": median,
            }
        )
        previous = count
    return steps


def duck_retention(con: duckdb.DuckDBPyConnection, ranges: Ranges) -> Any:
    """First-time weekly cohorts (first-ever active event), bounded returns (any active event)."""
    f, cohorts, periods = ranges.start_us, ranges.cohorts, RETENTION_PERIODS
    base = f"""
        WITH pa AS (
            SELECT p.person_id, e.ts FROM events e JOIN pdi p ON p.distinct_id = e.distinct_id
            WHERE e.active
        ),
        firsts AS (SELECT person_id, min(ts) AS first_ts FROM pa GROUP BY person_id),
        cohort AS (
            SELECT person_id, (first_ts - {f}) // {WEEK_US} AS c FROM firsts
            WHERE first_ts >= {f} AND (first_ts - {f}) // {WEEK_US} < {cohorts}
        ),
        returns AS (SELECT DISTINCT person_id, (ts - {f}) // {WEEK_US} AS w FROM pa WHERE ts >= {f})
    """
    sizes = dict(con.execute(base + " SELECT c, count(*) FROM cohort GROUP BY c").fetchall())
    cells = con.execute(
        base + " SELECT c.c, r.w - c.c AS k, count(*) FROM cohort c"
        " JOIN returns r ON r.person_id = c.person_id"
        f" WHERE r.w >= c.c AND r.w <= c.c + {periods} GROUP BY c.c, k"
    ).fetchall()
    counts = {(c, k): n for c, k, n in cells}
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return [
        {
            "start": (epoch + timedelta(microseconds=f + c * WEEK_US)).date().isoformat(),
            "size": sizes.get(c, 0),
            "counts": [counts.get((c, k), 0) for k in range(periods + 1)],
        }
        for c in range(cohorts)
    ]


def duck_sessions(con: duckdb.DuckDBPyConnection, ranges: Ranges) -> Any:
    """Active events (no client session ids in this data) split at gaps over 30 minutes."""
    f, t = ranges.start_us, ranges.end_us
    row = con.execute(
        f"""
        WITH a AS (
            SELECT p.person_id, e.ts, e.id, (e.event = {_quote(PAGEVIEW)})::INT AS pv
            FROM events e JOIN pdi p ON p.distinct_id = e.distinct_id
            WHERE e.active AND e.session_id IS NULL
        ),
        marked AS (
            SELECT *, CASE WHEN lag(ts) OVER w IS NULL OR ts - lag(ts) OVER w > {SESSION_TIMEOUT_US}
                THEN 1 ELSE 0 END AS is_start
            FROM a WINDOW w AS (PARTITION BY person_id ORDER BY ts, id)
        ),
        numbered AS (
            SELECT *, sum(is_start) OVER (PARTITION BY person_id ORDER BY ts, id
                ROWS UNBOUNDED PRECEDING) AS seq
            FROM marked
        ),
        sessions AS (
            SELECT min(ts) AS st, max(ts) AS en, count(*) AS n, sum(pv) AS pv
            FROM numbered GROUP BY person_id, seq
        )
        SELECT count(*), quantile_cont(en - st, 0.5) / {US}, avg(en - st) / {US},
            avg((n = 1)::INT), sum(pv) / count(*)
        FROM sessions WHERE st >= {f} AND st < {t}
        """
    ).fetchone()
    assert row is not None
    return dict(zip(SESSION_KEYS, [float(v) if v is not None else 0.0 for v in row], strict=True))


@dataclass
class Question:
    label: str
    ours: Callable[[], Any]
    duck: Callable[[], Any]


def questions(con: duckdb.DuckDBPyConnection, ranges: Ranges) -> list[Question]:
    from bench import insights  # it imports this module

    weeks = ranges.cohorts
    return [
        Question(
            f"volume per day ({ranges.days} days)",
            lambda: our_volume(ranges),
            lambda: duck_volume(con, ranges),
        ),
        Question(
            "DAU series",
            lambda: our_active(ranges, "dau"),
            lambda: duck_active(con, ranges, 0),
        ),
        Question(
            "WAU series",
            lambda: our_active(ranges, "wau"),
            lambda: duck_active(con, ranges, 6),
        ),
        Question(
            "funnel (3 steps, 14-day window)",
            lambda: our_funnel(ranges),
            lambda: duck_funnel(con, ranges),
        ),
        Question(
            f"retention ({weeks} weekly cohorts, {RETENTION_PERIODS} periods)",
            lambda: our_retention(ranges),
            lambda: duck_retention(con, ranges),
        ),
        Question(
            "sessions summary (30-min gaps)",
            lambda: our_sessions(ranges),
            lambda: duck_sessions(con, ranges),
        ),
        *insights.questions(con, ranges),
    ]


# -- comparing ---------------------------------------------------------------------------------


def differences(ours: Any, expected: Any, path: str = "") -> list[str]:
    """Where ``ours`` differs from ``expected`` (numbers within 1e-9 relative are equal)."""
    if isinstance(expected, dict):
        if not isinstance(ours, dict):
            return [f"{path or 'result'}: ours {ours!r}, expected an object"]
        found: list[str] = []
        for key, value in expected.items():
            found += differences(ours.get(key, "<missing>"), value, f"{path}.{key}")
        return found
    if isinstance(expected, list):
        if not isinstance(ours, list):
            return [f"{path or 'result'}: ours {ours!r}, expected a list"]
        found = []
        if len(ours) != len(expected):
            found.append(f"{path or 'result'}: ours has {len(ours)} items, DuckDB {len(expected)}")
        for index, (mine, theirs) in enumerate(zip(ours, expected, strict=False)):
            found += differences(mine, theirs, f"{path}[{index}]")
        return found
    numeric = (int, float)
    if isinstance(expected, numeric) and not isinstance(expected, bool):
        if (
            isinstance(ours, numeric)
            and not isinstance(ours, bool)
            and math.isclose(float(ours), float(expected), rel_tol=1e-9, abs_tol=1e-9)
        ):
            return []
        return [f"{path}: ours {ours!r}, DuckDB {expected!r}"]
    return [] if ours == expected else [f"{path}: ours {ours!r}, DuckDB {expected!r}"]


# -- running -----------------------------------------------------------------------------------


def timed(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """The median wall time of ``repeat`` calls, and the last result."""
    times: list[float] = []
    result: T | None = None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    assert result is not None
    return statistics.median(times), result


def make_app(url: str, name: str) -> Flask:
    app = Flask(name)
    app.config.update(UMETRICS_DATABASE_URL=url, UMETRICS_SCHEDULER="off")
    UMetrics(app)
    return app


@dataclass
class Cell:
    seconds: float | None = None
    note: str = ""  # "pending", "error", "skipped"

    def text(self) -> str:
        return f"{self.seconds:.3f}" if self.seconds is not None else self.note


@dataclass
class Row:
    label: str
    sqlite: Cell
    postgres: Cell
    duck: Cell
    verdicts: list[str] = field(default_factory=list)
    #: The ClickHouse event store (``bench/clickhouse.py``); skipped unless asked for.
    clickhouse: Cell = field(default_factory=lambda: Cell(note="skipped"))


def run_ours(app: Flask | None, fn: Callable[[], Any], repeat: int, name: str) -> tuple[Cell, Any]:
    if app is None:
        return Cell(note="skipped"), None
    with app.app_context():
        try:
            seconds, answer = timed(fn, repeat)
        except (Pending, NotImplementedError):
            log(f"    {name}: pending (the report is not written yet)")
            return Cell(note="pending"), None
        except NotAvailableOnClickHouse:
            log(f"    {name}: not ported (the report answers 501 on ClickHouse)")
            return Cell(note="not ported"), None
        except Exception as exc:  # noqa: BLE001 - a failing report is a result worth printing
            log(f"    {name}: ERROR {type(exc).__name__}: {exc}")
            return Cell(note="error"), exc
    log(f"    {name}: {seconds:.3f} s")
    return Cell(seconds), answer


def run_questions(
    sqlite_app: Flask | None,
    pg_app: Flask | None,
    con: duckdb.DuckDBPyConnection,
    ranges: Ranges,
    repeat: int,
    clickhouse_app: Flask | None = None,
) -> list[Row]:
    rows: list[Row] = []
    for question in questions(con, ranges):
        log(f"  {question.label}")
        sqlite_cell, sqlite_answer = run_ours(sqlite_app, question.ours, repeat, "sqlite")
        pg_cell, pg_answer = run_ours(pg_app, question.ours, repeat, "postgresql")
        ch_cell, ch_answer = run_ours(clickhouse_app, question.ours, repeat, "clickhouse")
        duck_seconds, duck_answer = timed(question.duck, repeat)
        log(f"    duckdb: {duck_seconds:.3f} s")
        row = Row(question.label, sqlite_cell, pg_cell, Cell(duck_seconds), clickhouse=ch_cell)
        for name, cell, answer in (
            ("SQLite", sqlite_cell, sqlite_answer),
            ("PostgreSQL", pg_cell, pg_answer),
            ("ClickHouse", ch_cell, ch_answer),
        ):
            if cell.note == "skipped" and name == "ClickHouse" and clickhouse_app is None:
                continue
            if cell.note in ("skipped", "pending", "not ported"):
                row.verdicts.append(f"{name}: {cell.note}")
            elif cell.note == "error":
                row.verdicts.append(f"{name}: ERROR {type(answer).__name__}: {answer}")
            else:
                found = differences(answer, duck_answer)
                if found:
                    shown = "; ".join(found[:8]) + (
                        f"; ... ({len(found)} in all)" * (len(found) > 8)
                    )
                    row.verdicts.append(f"{name}: DIFFERS from DuckDB: {shown}")
                else:
                    row.verdicts.append(f"{name}: answers match")
        log("    " + " | ".join(row.verdicts))
        rows.append(row)
    return rows


# -- REST ingestion ----------------------------------------------------------------------------


@dataclass
class IngestOutcome:
    events: int
    rest_seconds: float
    raw_seconds: float
    stored: int
    distinct_uuids: int
    resend_accepted: int
    resend_duplicates: int
    retries: int
    errors: list[str]

    @property
    def rest_rate(self) -> float:
        return self.events / self.rest_seconds

    @property
    def raw_rate(self) -> float:
        return self.events / self.raw_seconds


def ingest_payloads(m: int, seed: int = SEED) -> list[dict[str, Any]]:
    """``m`` recent events (the API refuses very old ones) over ``m / 20`` distinct ids."""
    rng = random.Random(seed + 1)
    now = datetime.now(timezone.utc)
    ids = [f"rest-{k}" for k in range(max(1, m // 20))]
    events = []
    for _ in range(m):
        moment = now - timedelta(seconds=rng.random() * 2 * 86400)
        pick = rng.random()
        name = next(event for bound, event in BROWSING if pick < bound)
        server = rng.random() < 0.1
        events.append(
            {
                "event": SERVER_EVENTS[0] if server else name,
                "distinct_id": rng.choice(ids),
                "timestamp": moment.isoformat(),
                "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "active": not server,
                "properties": {"path": rng.choice(PATHS)},
            }
        )
    return events


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_serving(
    process: subprocess.Popen[bytes], port: int, deadline_s: float, path: str
) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    raise RuntimeError(f"gunicorn did not answer on port {port} within {deadline_s:.0f} s")


def _post(
    connection: http.client.HTTPConnection, body: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    connection.request("POST", "/umetrics/api/events", body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    return response.status, json.loads(data) if data else None


@contextmanager
def gunicorn_serving(
    app_spec: str,
    env: dict[str, str],
    log_path: Path,
    ready_path: str,
    workers: int = 2,
    threads: int = 1,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``gunicorn -w WORKERS --threads THREADS`` serving ``app_spec`` on a free port of
    127.0.0.1, the workers warmed up on ``ready_path``; always stopped on the way out. Yields
    the port and the master process."""
    port = _free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [
        str(gunicorn) if gunicorn.exists() else (shutil.which("gunicorn") or "gunicorn"),
        "-w",
        str(workers),
        "--threads",
        str(threads),
        "-b",
        f"127.0.0.1:{port}",
        "--chdir",
        str(ROOT),
        "--timeout",
        "60",
        app_spec,
    ]
    log(f"  gunicorn -w {workers} --threads {threads} {app_spec} on 127.0.0.1:{port}")
    log(f"    (log {log_path})")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=log_file, env=dict(os.environ, **env), cwd=ROOT
        )
        try:
            _wait_until_serving(process, port, 60, ready_path)
            for _ in range(4):  # let both workers import the app before timing
                _wait_until_serving(process, port, 30, ready_path)
            yield port, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log("  gunicorn stopped")


def run_ingest(
    url: str,
    m: int,
    log_dir: Path = WORK_DIR,
    inspect: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> IngestOutcome:
    """REST ingestion of ``m`` events against a raw ``executemany`` of the same rows.

    ``inspect`` is called with the gunicorn master after the REST run, before gunicorn stops
    (``bench/run_all.py`` reads its workers' memory there)."""
    events = ingest_payloads(m)
    dsn = plain_dsn(url)

    log(f"  raw executemany of {m:,} rows (scope {RAW_SCOPE})")
    raw_rows = [
        (
            RAW_SCOPE,
            e["uuid"],
            e["event"],
            e["distinct_id"],
            int(datetime.fromisoformat(e["timestamp"]).timestamp() * US),
            None,
            e["active"],
            compact(e["properties"]),
        )
        for e in events
    ]
    with psycopg.connect(dsn, connect_timeout=10) as connection:
        connection.execute(
            "DELETE FROM umetrics_events WHERE scope_id IN (%s, %s)", (RAW_SCOPE, REST_SCOPE)
        )
        connection.commit()
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO umetrics_events (scope_id, uuid, event, distinct_id, ts, session_id,"
                " active, properties) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
                raw_rows,
            )
        connection.commit()
        raw_seconds = time.perf_counter() - began
    log(f"    {raw_seconds:.3f} s, {m / raw_seconds:,.0f} events/s")

    key_app = make_app(url, "bench_ingest_keys")
    with key_app.app_context():
        key = create_api_key(REST_SCOPE, "ingest", name="bench")
    headers = {
        "Content-Type": "application/json",
        "X-UMetrics-Key": key,
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    }
    bodies = [
        json.dumps({"scope_id": REST_SCOPE, "events": list(batch)}).encode()
        for batch in _chunks(events, INGEST_BATCH)
    ]
    env = {"UMETRICS_BENCH_DATABASE_URL": url}
    log_path = log_dir / "gunicorn.log"
    sent = send_rest(bodies, headers, env, log_path, inspect=inspect)
    with psycopg.connect(dsn, connect_timeout=10) as connection:
        counted = connection.execute(
            "SELECT count(*), count(DISTINCT uuid) FROM umetrics_events WHERE scope_id = %s",
            (REST_SCOPE,),
        ).fetchone()
    assert counted is not None
    return IngestOutcome(
        events=m,
        rest_seconds=sent.seconds,
        raw_seconds=raw_seconds,
        stored=counted[0],
        distinct_uuids=counted[1],
        resend_accepted=sent.resend["accepted"],
        resend_duplicates=sent.resend["duplicates"],
        retries=sent.retries,
        errors=sent.errors,
    )


@dataclass
class RestRun:
    seconds: float
    resend: dict[str, int]
    retries: int
    errors: list[str]


def send_rest(
    bodies: list[bytes],
    headers: dict[str, str],
    env: dict[str, str],
    log_path: Path,
    *,
    inspect: Callable[[subprocess.Popen[bytes]], None] | None = None,
    workers: int = 2,
    worker_threads: int = 1,
) -> RestRun:
    """POST ``bodies`` to ``bench.ingest_app`` under gunicorn from ``INGEST_THREADS`` client
    threads (timed), then the first body again (its answer: all duplicates when exactly once)."""
    m = sum(body.count(b'"uuid"') for body in bodies)
    ready = "/umetrics/api/openapi.json"
    app_spec = "bench.ingest_app:create_app()"
    with gunicorn_serving(app_spec, env, log_path, ready, workers, worker_threads) as (
        port,
        process,
    ):
        work: queue.Queue[bytes] = queue.Queue()
        for body in bodies:
            work.put(body)
        lock = threading.Lock()
        errors: list[str] = []
        counters = {"accepted": 0, "retries": 0}

        def sender() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                while True:
                    try:
                        body = work.get_nowait()
                    except queue.Empty:
                        return
                    for attempt in range(3):  # a retry is safe: events carry their uuid
                        try:
                            status, payload = _post(connection, body, headers)
                            break
                        except (OSError, http.client.HTTPException) as exc:
                            connection.close()
                            with lock:
                                counters["retries"] += 1
                            if attempt == 2:
                                status, payload = 0, f"{type(exc).__name__}: {exc}"
                    with lock:
                        if status == 200 and isinstance(payload, dict):
                            counters["accepted"] += payload["accepted"] + payload["duplicates"]
                        else:
                            errors.append(f"HTTP {status}: {payload}"[:300])
            finally:
                connection.close()

        log(f"  REST: {len(bodies):,} batches of {INGEST_BATCH} from {INGEST_THREADS} threads")
        began = time.perf_counter()
        threads = [threading.Thread(target=sender) for _ in range(INGEST_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rest_seconds = time.perf_counter() - began
        log(f"    {rest_seconds:.3f} s, {m / rest_seconds:,.0f} events/s")
        again = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            status, resend = _post(again, bodies[0], headers)
        finally:
            again.close()
        if status != 200:
            errors.append(f"re-send: HTTP {status}: {resend}"[:300])
            resend = {"accepted": -1, "duplicates": -1}
        if inspect is not None:
            inspect(process)
    return RestRun(rest_seconds, resend, counters["retries"], errors)


# -- output ------------------------------------------------------------------------------------


def machine_line(url: str | None) -> str:
    """CPUs, RAM and the versions that matter; ``url`` None: PostgreSQL was not used."""
    mem_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    pg_version = "not used"
    if url is not None:
        with psycopg.connect(plain_dsn(url), connect_timeout=10) as connection:
            found = connection.execute("SHOW server_version").fetchone()
        pg_version = found[0].split()[0] if found else "?"
    return (
        f"Machine: {os.cpu_count()} CPUs (nproc), {mem_kib / 1024**2:.1f} GiB RAM, "
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
        f"PostgreSQL {pg_version}, DuckDB {duckdb.__version__}"
    )


def ratio(numerator: Cell, denominator: Cell) -> str:
    if numerator.seconds is None or not denominator.seconds:
        return "—"
    return f"{numerator.seconds / denominator.seconds:.1f}"


def render(
    header: str, load: Row, rows: list[Row], ingest: IngestOutcome | None, skipped_ingest: bool
) -> str:
    lines = [
        header,
        "",
        "| question | SQLite s | PostgreSQL s | DuckDB s | PG/DuckDB |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in [load, *rows]:
        cells = (row.sqlite.text(), row.postgres.text(), row.duck.text())
        lines.append(f"| {row.label} | {' | '.join(cells)} | {ratio(row.postgres, row.duck)} |")
    lines += ["", "Answers (ours against DuckDB's on the same rows):", ""]
    for row in rows:
        lines.append(f"- {row.label}: {'; '.join(row.verdicts)}")
    lines.append("")
    if ingest is not None:
        lines += [
            f"REST ingestion of {ingest.events:,} events (batches of {INGEST_BATCH}, "
            f"{INGEST_THREADS} client threads, gunicorn -w 2) against a raw `executemany` of the "
            "same rows into `umetrics_events` (one transaction), same PostgreSQL database:",
            "",
            "| REST events/s | raw executemany events/s | ratio |",
            "|---:|---:|---:|",
            f"| {ingest.rest_rate:,.0f} | {ingest.raw_rate:,.0f} | "
            f"{ingest.rest_rate / ingest.raw_rate:.3f} |",
            "",
        ]
        exact = ingest.stored == ingest.events == ingest.distinct_uuids
        lines.append(
            f"Stored {ingest.stored:,} rows ({ingest.distinct_uuids:,} distinct uuids) for "
            f"{ingest.events:,} sent: {'exactly once' if exact else 'MISMATCH'}; re-sending the "
            f"first batch: {ingest.resend_accepted} accepted, {ingest.resend_duplicates} "
            f"duplicates; {ingest.retries} client retries"
            + (f"; errors: {ingest.errors[:3]}" if ingest.errors else "")
            + "."
        )
    elif skipped_ingest:
        lines.append("REST ingestion: skipped (--skip-ingest).")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate")
    parser.add_argument("--persons", type=int, default=50_000, help="persons to generate")
    parser.add_argument("--days", type=int, default=90, help="days the events span")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL and DuckDB only")
    parser.add_argument("--skip-ingest", action="store_true", help="no REST ingestion test")
    parser.add_argument("--ingest-events", type=int, default=20_000, help="events sent by REST")
    parser.add_argument("--repeat", type=int, default=3, help="runs per query (median shown)")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed of the data")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("UMETRICS_BENCH_DATABASE_URL", DEFAULT_PG_URL),
        help="PostgreSQL database to WIPE and use (its umetrics_* tables are dropped)",
    )
    args = parser.parse_args(argv)
    if args.days < 7:
        parser.error("--days must be at least 7")
    if args.repeat < 1 or args.ingest_events < INGEST_BATCH:
        parser.error("--repeat must be >= 1 and --ingest-events >= 100")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    log(f"generating {args.events:,} events, {args.persons:,} persons, {args.days} days")
    data = generate(args.events, args.persons, args.days, args.seed)
    log(f"  {describe(data)} in {time.perf_counter() - began:.1f} s")

    label = f"load {len(data.events):,} events + persons + ids"
    load = Row(label, Cell(note="skipped"), Cell(), Cell())
    sqlite_app = None
    if not args.skip_sqlite:
        path = WORK_DIR / "analytics.sqlite"
        log(f"loading SQLite {path}")
        load.sqlite = Cell(load_sqlite(data, path))
        log(f"  {load.sqlite.text()} s")
        sqlite_app = make_app(f"sqlite:///{path}", "bench_sqlite")
    log("loading PostgreSQL (wiping umetrics_* tables first)")
    load.postgres = Cell(load_postgres(data, args.pg_url))
    log(f"  {load.postgres.text()} s")
    pg_app = make_app(args.pg_url, "bench_postgres")
    log("loading DuckDB (through CSV)")
    con, duck_seconds = load_duckdb(data, WORK_DIR)
    load.duck = Cell(duck_seconds)
    log(f"  {load.duck.text()} s")

    ranges = Ranges(
        data.start_us, data.end_us, args.days, min(RETENTION_COHORTS, max(1, args.days // 7))
    )
    log(f"running the questions (median of {args.repeat})")
    rows = run_questions(sqlite_app, pg_app, con, ranges, args.repeat)
    events_total = len(data.events)
    del data

    ingest = None
    if not args.skip_ingest:
        log(f"REST ingestion of {args.ingest_events:,} events")
        ingest = run_ingest(args.pg_url, args.ingest_events)

    header = (
        machine_line(args.pg_url)
        + f". Data: {events_total:,} events, {args.persons:,} persons, {args.days} days "
        f"(seed {args.seed}); times are the median of {args.repeat} runs."
    )
    print(render(header, load, rows, ingest, args.skip_ingest))
    log(f"done in {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
