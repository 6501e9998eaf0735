"""Stat store reads: ``get_stat_series`` and ``get_latest_stats`` against the same SELECT sent
through the database driver on one open connection (the baseline).

``seed`` appends ``metrics`` x ``readings`` rows to ``umetrics_stat_readings`` (scope
``bench-stats``, one reading per metric per hour, values from ``random.Random(seed)``) with the
driver. ``compare`` then times, per call, a pass over every metric of ``get_stat_series(limit=30)``
and of the raw series SELECT, and a ``get_latest_stats`` of all the metrics against the raw
``row_number()`` SELECT, and checks that both sides return the same readings.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from flask import Flask

from bench.analytics import START, log, plain_dsn
from bench.flags import Timing, measure
from flask_umetrics import get_stat_series
from flask_umetrics.stats.store import get_latest_stats

SCOPE = "bench-stats"
SERIES_LIMIT = 30

#: The statements ``get_stat_series`` and ``get_latest_stats`` send, written by hand (qmark style).
SERIES_SQL = (
    "SELECT metric_key, value, captured_at, scope_id, source FROM ("
    "SELECT metric_key, value, captured_at, scope_id, source, id FROM umetrics_stat_readings"
    " WHERE scope_id = ? AND metric_key = ? ORDER BY captured_at DESC, id DESC LIMIT ?"
    ") AS recent ORDER BY captured_at, id"
)
LATEST_SQL = (
    "SELECT metric_key, value, captured_at, scope_id, source FROM ("
    "SELECT metric_key, value, captured_at, scope_id, source, row_number() OVER ("
    "PARTITION BY metric_key ORDER BY captured_at DESC, id DESC) AS rank"
    " FROM umetrics_stat_readings WHERE scope_id = ? AND metric_key IN ({keys})"
    ") AS ranked WHERE rank = 1"
)


def metric_keys(metrics: int) -> list[str]:
    return [f"bench.metric_{index:03d}" for index in range(metrics)]


def _readings(metrics: int, readings: int, seed: int) -> list[tuple[str, float, datetime]]:
    rng = random.Random(seed + 2)
    keys = metric_keys(metrics)
    rows = []
    for hour in range(readings):
        moment = START + timedelta(hours=hour)
        rows += [(key, round(rng.random() * 1000, 3), moment) for key in keys]
    return rows


def seed_sqlite(path: str, metrics: int, readings: int, seed: int) -> None:
    """Replace the scope's readings in the SQLite file (naive UTC text, as SQLAlchemy stores)."""
    rows = [
        (key, value, moment.strftime("%Y-%m-%d %H:%M:%S.%f"))
        for key, value, moment in _readings(metrics, readings, seed)
    ]
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.execute("DELETE FROM umetrics_stat_readings WHERE scope_id = ?", (SCOPE,))
            connection.executemany(
                "INSERT INTO umetrics_stat_readings (scope_id, metric_key, value, captured_at,"
                f" source) VALUES ('{SCOPE}', ?, ?, ?, 'python')",
                rows,
            )
        connection.execute("ANALYZE")
    finally:
        connection.close()


def seed_postgres(url: str, metrics: int, readings: int, seed: int) -> None:
    """Replace the scope's readings in the PostgreSQL database with ``COPY``, then ANALYZE."""
    with psycopg.connect(plain_dsn(url), connect_timeout=10) as connection:
        connection.execute("DELETE FROM umetrics_stat_readings WHERE scope_id = %s", (SCOPE,))
        columns = "scope_id, metric_key, value, captured_at, source"
        statement = f"COPY umetrics_stat_readings ({columns}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for key, value, moment in _readings(metrics, readings, seed):
                copy.write_row((SCOPE, key, value, moment, "python"))
        connection.commit()
        connection.autocommit = True
        connection.execute("ANALYZE umetrics_stat_readings")


@dataclass
class StatComparison:
    """µs per call of ours and of the raw SELECT, and whether both returned the same readings."""

    label: str
    ours: Timing
    raw: Timing
    same: bool


#: Runs a raw statement (qmark placeholders) and returns its rows.
Execute = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def _as_utc(value: Any) -> datetime:
    """A ``captured_at`` from the driver: aware from psycopg, naive UTC text from sqlite3."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    moment: datetime = value
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def compare(app: Flask, execute: Execute, metrics: int, repeat: int) -> list[StatComparison]:
    """Interleaved passes of ours and the raw SELECTs; the readings must be equal."""
    keys = metric_keys(metrics)
    latest_sql = LATEST_SQL.format(keys=", ".join("?" * len(keys)))

    def ours_series() -> float:
        with app.app_context():
            began = time.perf_counter()
            for key in keys:
                get_stat_series(key, scope_id=SCOPE, limit=SERIES_LIMIT)
            return time.perf_counter() - began

    def raw_series() -> float:
        began = time.perf_counter()
        for key in keys:
            execute(SERIES_SQL, (SCOPE, key, SERIES_LIMIT))
        return time.perf_counter() - began

    def ours_latest() -> float:
        with app.app_context():
            began = time.perf_counter()
            get_latest_stats(keys, scope_id=SCOPE)
            return time.perf_counter() - began

    def raw_latest() -> float:
        began = time.perf_counter()
        execute(latest_sql, (SCOPE, *keys))
        return time.perf_counter() - began

    with app.app_context():
        ours_seen = {
            key: [(r.value, r.captured_at) for r in get_stat_series(key, scope_id=SCOPE)]
            for key in keys
        }
        ours_last = {
            k: (r.value, r.captured_at) for k, r in get_latest_stats(keys, scope_id=SCOPE).items()
        }
    raw_seen = {
        key: [(row[1], _as_utc(row[2])) for row in execute(SERIES_SQL, (SCOPE, key, SERIES_LIMIT))]
        for key in keys
    }
    raw_last = {row[0]: (row[1], _as_utc(row[2])) for row in execute(latest_sql, (SCOPE, *keys))}
    series_same = ours_seen == raw_seen and all(
        len(seen) == SERIES_LIMIT for seen in raw_seen.values()
    )
    latest_same = ours_last == raw_last and len(raw_last) == len(keys)
    if not (series_same and latest_same):
        log(f"  readings differ: series {series_same}, latest {latest_same}")

    series = measure({"ours": ours_series, "raw": raw_series}, repeat, len(keys))
    latest = measure({"ours": ours_latest, "raw": raw_latest}, repeat, 1)
    return [
        StatComparison(
            f"`get_stat_series(limit={SERIES_LIMIT})`, one metric",
            series["ours"],
            series["raw"],
            series_same,
        ),
        StatComparison(
            f"`get_latest_stats` of {len(keys)} metrics, one call",
            latest["ours"],
            latest["raw"],
            latest_same,
        ),
    ]


def sqlite_execute(connection: sqlite3.Connection) -> Execute:
    def execute(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return connection.execute(sql, params).fetchall()

    return execute


def postgres_execute(connection: psycopg.Connection[Any]) -> Execute:
    """psycopg wants ``%s``; the statements carry no literal ``?`` or ``%``."""

    def execute(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return connection.execute(sql.replace("?", "%s"), params).fetchall()

    return execute
