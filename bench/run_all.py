"""``make bench``: every benchmark in one run, one Markdown table of ratios to same-run baselines.

    python -m bench.run_all [--events N] [--persons P] [--days D] [--repeat R]
                            [--ingest-events M] [--evaluations F] [--stat-metrics K]
                            [--stat-readings J] [--stores LIST] [--skip-postgres]
                            [--skip-clickhouse] [--skip-ingest] [--pg-url URL]
                            [--output PATH] [--work-dir DIR]

It drives the parts in ``bench/analytics.py`` (reports against DuckDB, REST ingestion against a
raw ``executemany``), ``bench/flags.py`` (``resolve_variant`` against the GrowthBook SDK's
``run()``, a three-rule feature against its ``eval_feature()``), ``bench/stats.py`` (stat store
reads against the raw SELECT) and ``bench/memory.py`` (an
ingestion worker's peak RSS against a bare Flask worker's). Each row's ratio is our cost divided
by the baseline's, both measured in this run: the machine is shared and noisy, so only ratios are
comparable between runs. Progress goes to stderr; the table goes to stdout and ``--output``.
The exit status is 1 if any check failed (answers differing from DuckDB's, readings differing
from the raw SELECT's, ingestion not exactly once). **The PostgreSQL database is wiped.**
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from flask import Flask

from bench import analytics, clickhouse, flags, memory, stats
from bench.analytics import Cell, Row, log

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "latest.md"
#: Passes of the µs rows (flags, stat store): at least this many, whatever ``--repeat`` says.
MIN_PASSES = 5
DATABASES = ("SQLite", "PostgreSQL")
#: ``--stores`` names: the stores whose rows the run measures.
STORES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "clickhouse": "ClickHouse"}


@dataclass
class TableRow:
    area: str
    measure: str
    ours: str
    baseline: str
    #: Our cost / the baseline's (time per operation, or memory); None when not measured.
    ratio: float | None
    check: str
    ok: bool = True


def ratio_text(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def micros(value: float | None) -> str:
    """µs, or ms from 10 ms up."""
    if value is None:
        return "—"
    return f"{value / 1000:,.1f} ms" if value >= 10_000 else f"{value:,.1f} µs"


def _ratio(ours: float | None, baseline: float | None) -> float | None:
    return ours / baseline if ours is not None and baseline else None


# -- reports -----------------------------------------------------------------------------------


def report_rows(load: Row, rows: list[Row], databases: Sequence[str]) -> list[TableRow]:
    """Per database, the bulk load and each question against DuckDB on the same rows."""
    out = []
    for name in databases:
        for row in [load, *rows]:
            cells = {"SQLite": row.sqlite, "PostgreSQL": row.postgres, "ClickHouse": row.clickhouse}
            ours: Cell = cells[name]
            verdict = next((v for v in row.verdicts if v.startswith(f"{name}:")), "")
            if row is load:
                check, ok = "—", ours.seconds is not None
            elif ours.note == "not ported":  # the report answers 501 on ClickHouse: not a failure
                check, ok = "not ported (501)", True
            else:
                ok = verdict == f"{name}: answers match"
                check = "answers match" if ok else verdict.split(": ", 1)[-1].split(":")[0]
            baseline = "DuckDB: CSV written and read" if row is load else "DuckDB SQL"
            out.append(
                TableRow(
                    f"reports, {name}",
                    row.label,
                    f"{ours.text()} s" if ours.seconds is not None else ours.note,
                    f"{row.duck.text()} s ({baseline})",
                    _ratio(ours.seconds, row.duck.seconds),
                    check,
                    ok,
                )
            )
    return out


# -- flags -------------------------------------------------------------------------------------


def flag_rows(work_dir: Path, evaluations: int, seed: int, passes: int) -> list[TableRow]:
    """``resolve_variant(consent=False)`` against the faster of GrowthBook's two ways to run."""
    subjects = flags.make_subjects(evaluations, seed)
    target = flags.make_target("sqlite", flags.reset_sqlite(work_dir / "flags.sqlite"))
    try:
        experiment = flags.gb_experiment()
        hashed = flags.ours_results(target.app, subjects, consent=False)
        agree, _ = flags.verify_against_growthbook(subjects, hashed, experiment)  # exits if not
        gb_feature, ours_feature, _ = flags.feature_passes(target.app, subjects)  # exits if not
        runs: dict[str, flags.Pass] = {
            "a new instance per evaluation": flags.gb_new_instance(subjects, experiment),
            "one reused instance": flags.gb_reused(subjects, experiment),
            "ours": flags.ours_hash(target.app, subjects),
            "feature: GrowthBook": gb_feature,
            "feature: ours": ours_feature,
        }
        for run in runs.values():  # warm-up: imports, caches, the definition cache
            run()
        timings = flags.measure(runs, passes, evaluations)
    finally:
        target.engine.dispose()
    ours = timings.pop("ours").median
    feature_ours = timings.pop("feature: ours").median
    feature_gb = timings.pop("feature: GrowthBook").median
    how, fastest = min(timings.items(), key=lambda item: item[1].median or float("inf"))
    return [
        TableRow(
            "flags",
            "`resolve_variant(consent=False)`: targeting + hash, one evaluation",
            micros(ours),
            f"{micros(fastest.median)} (GrowthBook SDK `run()`, {how})",
            _ratio(ours, fastest.median),
            f"{agree:,}/{evaluations:,} same variant",
            agree == evaluations,
        ),
        TableRow(
            "flags",
            "a feature with 3 rules (force with a condition, rollout, experiment), one evaluation",
            micros(feature_ours),
            f"{micros(feature_gb)} (GrowthBook SDK `eval_feature()`, one reused instance)",
            _ratio(feature_ours, feature_gb),
            f"{evaluations:,}/{evaluations:,} same value",
            True,  # feature_passes exits on any disagreement
        ),
    ]


# -- stat store --------------------------------------------------------------------------------


def stat_rows(
    name: str, app: Flask, execute: stats.Execute, metrics: int, passes: int
) -> list[TableRow]:
    driver = "sqlite3" if name == "SQLite" else "psycopg"
    return [
        TableRow(
            f"stat store, {name}",
            comparison.label,
            micros(comparison.ours.median),
            f"{micros(comparison.raw.median)} (the same SELECT through {driver})",
            _ratio(comparison.ours.median, comparison.raw.median),
            "same readings" if comparison.same else "DIFFERENT readings",
            comparison.same,
        )
        for comparison in stats.compare(app, execute, metrics, passes)
    ]


# -- ingestion and memory ----------------------------------------------------------------------


def ingest_rows(pg_url: str, events: int, work_dir: Path) -> list[TableRow]:
    """REST ingestion against a raw ``executemany``; the workers' memory against a bare app's."""
    seen: list[memory.WorkerMemory] = []
    outcome = analytics.run_ingest(
        pg_url,
        events,
        work_dir,
        inspect=lambda master: seen.append(memory.read_workers(master.pid)),
    )
    exact = (
        outcome.stored == outcome.events == outcome.distinct_uuids
        and outcome.resend_accepted == 0
        and outcome.resend_duplicates == analytics.INGEST_BATCH
        and not outcome.errors
    )
    check = "stored exactly once, re-send all duplicates" if exact else "NOT exactly once"
    requests = -(-events // analytics.INGEST_BATCH) + 1  # the batches and the re-send
    log(f"bare gunicorn workers: {requests:,} requests to a trivial Flask app")
    bare = memory.bare_worker_memory(work_dir, requests)
    ingest = seen[0]
    return [
        TableRow(
            "ingestion, PostgreSQL",
            f"REST `POST /api/events`: {events:,} events, batches of {analytics.INGEST_BATCH}, "
            f"{analytics.INGEST_THREADS} client threads, gunicorn -w 2",
            f"{outcome.rest_rate:,.0f} events/s",
            f"{outcome.raw_rate:,.0f} events/s (raw psycopg `executemany`, one transaction)",
            outcome.raw_rate / outcome.rest_rate,
            check,
            exact,
        ),
        TableRow(
            "memory",
            "peak RSS (`VmHWM`) of a gunicorn worker after the REST run",
            f"{ingest.peak_mib:,.1f} MiB",
            f"{bare.peak_mib:,.1f} MiB (a worker serving a trivial Flask app, as many requests)",
            ingest.peak_kib / bare.peak_kib,
            f"{ingest.workers} and {bare.workers} workers read",
            ingest.workers == bare.workers == 2,
        ),
    ]


def clickhouse_ingest_rows(sql_url: str, sql_name: str, events: int, work_dir: Path) -> TableRow:
    """REST into ClickHouse (chdb, one gunicorn worker with threads) against raw
    clickhouse-connect inserts of the same rows in the same batches from as many threads."""
    outcome = clickhouse.run_clickhouse_ingest(sql_url, events, work_dir)
    check = "stored exactly once, re-send all duplicates" if outcome.exact else "NOT exactly once"
    if outcome.errors:
        check += f" ({outcome.errors[0][:120]})"
    return TableRow(
        "ingestion, ClickHouse (chdb)",
        f"REST `POST /api/events`: {events:,} events, batches of {analytics.INGEST_BATCH}, "
        f"{analytics.INGEST_THREADS} client threads, gunicorn -w 1 --threads "
        f"{clickhouse.WORKER_THREADS}, persons in {sql_name}",
        f"{outcome.rest_rate:,.0f} events/s",
        f"{outcome.raw_rate:,.0f} events/s (raw clickhouse-connect `insert`, same batches, "
        f"{analytics.INGEST_THREADS} threads)",
        outcome.raw_rate / outcome.rest_rate,
        check,
        outcome.exact,
    )


# -- output ------------------------------------------------------------------------------------


def render(header: str, rows: list[TableRow], notes: list[str]) -> str:
    lines = [
        header,
        "",
        "| area | measure | ours | baseline (what) | ratio | check |",
        "|---|---|---:|---|---:|---|",
    ]
    for row in rows:
        cells = (row.area, row.measure, row.ours, row.baseline, ratio_text(row.ratio), row.check)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", *notes])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate")
    parser.add_argument(
        "--persons", type=int, default=None, help="persons to generate (default: events / 20)"
    )
    parser.add_argument("--days", type=int, default=90, help="days the events span")
    parser.add_argument("--repeat", type=int, default=3, help="runs per query (median shown)")
    parser.add_argument("--seed", type=int, default=analytics.SEED, help="random seed")
    parser.add_argument("--ingest-events", type=int, default=20_000, help="events sent by REST")
    parser.add_argument("--evaluations", type=int, default=2000, help="flag subjects")
    parser.add_argument("--stat-metrics", type=int, default=100, help="metrics in the stat store")
    parser.add_argument("--stat-readings", type=int, default=1000, help="readings per metric")
    parser.add_argument(
        "--stores",
        default=",".join(STORES),
        help="comma-separated stores to measure against DuckDB (default: all): "
        f"{', '.join(STORES)}. Leaving a store out skips its load, report, stat store and "
        "ingestion rows; 'clickhouse' alone keeps persons in a SQLite file with no events",
    )
    parser.add_argument("--skip-postgres", action="store_true", help="as if --stores lacked it")
    parser.add_argument("--skip-ingest", action="store_true", help="no REST or memory rows")
    parser.add_argument("--skip-clickhouse", action="store_true", help="as if --stores lacked it")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("UMETRICS_BENCH_DATABASE_URL", analytics.DEFAULT_PG_URL),
        help="PostgreSQL database to WIPE and use (its umetrics_* tables are dropped)",
    )
    parser.add_argument(
        "--output", default=str(DEFAULT_OUTPUT), help="also write the table here ('-': stdout only)"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=analytics.WORK_DIR,
        help="scratch files (SQLite, CSV, logs)",
    )
    args = parser.parse_args(argv)
    stores = [name.strip().lower() for name in args.stores.split(",") if name.strip()]
    unknown = sorted(set(stores) - set(STORES))
    if unknown or not stores:
        parser.error(f"--stores takes some of {', '.join(STORES)} (got {args.stores!r})")
    args.stores = {
        name
        for name in stores
        if not (name == "postgresql" and args.skip_postgres)
        and not (name == "clickhouse" and args.skip_clickhouse)
    }
    if args.persons is None:
        args.persons = max(1, args.events // 20)
    if args.days < 7:
        parser.error("--days must be at least 7")
    if args.repeat < 1 or args.ingest_events < analytics.INGEST_BATCH:
        parser.error("--repeat must be >= 1 and --ingest-events >= 100")
    if args.evaluations < 10 or args.stat_metrics < 1 or args.stat_readings < stats.SERIES_LIMIT:
        parser.error("need --evaluations >= 10, --stat-metrics >= 1, --stat-readings >= 30")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    work_dir: Path = args.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    pg_url: str | None = args.pg_url if "postgresql" in args.stores else None
    use_sqlite = "sqlite" in args.stores
    use_clickhouse = "clickhouse" in args.stores
    databases = tuple(STORES[name] for name in STORES if name in args.stores)
    passes = max(args.repeat, MIN_PASSES)
    load_average = os.getloadavg()[0]

    log(f"generating {args.events:,} events, {args.persons:,} persons, {args.days} days")
    data = analytics.generate(args.events, args.persons, args.days, args.seed)
    log(f"  {analytics.describe(data)}")
    load = Row(f"load {len(data.events):,} events + persons + ids", Cell(), Cell(), Cell())
    sqlite_path = work_dir / "analytics.sqlite"
    sqlite_app = None
    if use_sqlite:
        log(f"loading SQLite {sqlite_path}")
        load.sqlite = Cell(analytics.load_sqlite(data, sqlite_path))
        sqlite_app = analytics.make_app(f"sqlite:///{sqlite_path}", "bench_sqlite")
    else:  # the ClickHouse app still keeps persons and keys in a SQL database
        analytics.load_sqlite(dataclasses.replace(data, events=[]), sqlite_path)
    ch_app = None
    if use_clickhouse:
        ch_url = clickhouse.chdb_url(work_dir / "chdb-reports")
        log(f"loading ClickHouse {ch_url} (events here, persons in the SQLite file)")
        load.clickhouse = Cell(clickhouse.load_clickhouse(data, ch_url))
        ch_app = clickhouse.make_clickhouse_app(f"sqlite:///{sqlite_path}", ch_url)
    pg_app = None
    if pg_url:
        log("loading PostgreSQL (wiping umetrics_* tables first)")
        load.postgres = Cell(analytics.load_postgres(data, pg_url))
        pg_app = analytics.make_app(pg_url, "bench_postgres")
    log("loading DuckDB (through CSV)")
    con, duck_seconds = analytics.load_duckdb(data, work_dir)
    load.duck = Cell(duck_seconds)
    cohorts = min(analytics.RETENTION_COHORTS, max(1, args.days // 7))
    ranges = analytics.Ranges(data.start_us, data.end_us, args.days, cohorts)
    log(f"running the questions (median of {args.repeat})")
    questions = analytics.run_questions(
        sqlite_app, pg_app, con, ranges, args.repeat, clickhouse_app=ch_app
    )
    con.close()
    events_total = len(data.events)
    del data
    table = report_rows(load, questions, databases)

    if sqlite_app is not None:
        log(f"stat store: {args.stat_metrics} metrics x {args.stat_readings:,} readings")
        stats.seed_sqlite(str(sqlite_path), args.stat_metrics, args.stat_readings, args.seed)
        connection = sqlite3.connect(sqlite_path)
        try:
            execute = stats.sqlite_execute(connection)
            table += stat_rows("SQLite", sqlite_app, execute, args.stat_metrics, passes)
        finally:
            connection.close()
    if pg_url and pg_app is not None:
        stats.seed_postgres(pg_url, args.stat_metrics, args.stat_readings, args.seed)
        dsn = analytics.plain_dsn(pg_url)
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as pg_connection:
            execute = stats.postgres_execute(pg_connection)
            table += stat_rows("PostgreSQL", pg_app, execute, args.stat_metrics, passes)

    log(f"flags: {args.evaluations:,} subjects, {passes} interleaved passes")
    table += flag_rows(work_dir, args.evaluations, args.seed, passes)

    if pg_url and not args.skip_ingest:
        log(f"REST ingestion of {args.ingest_events:,} events")
        table += ingest_rows(pg_url, args.ingest_events, work_dir)
    if use_clickhouse and not args.skip_ingest:
        log(f"REST ingestion of {args.ingest_events:,} events into ClickHouse")
        sql_url, sql_name = (
            (pg_url, "PostgreSQL") if pg_url else (f"sqlite:///{sqlite_path}", "SQLite")
        )
        table.append(clickhouse_ingest_rows(sql_url, sql_name, args.ingest_events, work_dir))
    for app in (sqlite_app, pg_app, ch_app):
        if app is not None:
            app.extensions["umetrics"].engine.dispose()

    header = (
        analytics.machine_line(pg_url)
        + f", load average {load_average:.1f} at the start. Data: {events_total:,} events, "
        f"{args.persons:,} persons, {args.days} days (seed {args.seed}); "
        + (
            f"{args.ingest_events:,} events sent by REST; "
            if (pg_url or use_clickhouse) and not args.skip_ingest
            else ""
        )
        + f"{args.evaluations:,} flag subjects; {args.stat_metrics} metrics x "
        f"{args.stat_readings:,} stat readings. Seconds: the median of {args.repeat} runs; µs: the "
        f"median of {passes} interleaved passes."
    )
    notes = [
        "ratio = our cost / the baseline's (time per operation, or memory): 1 is as cheap as the "
        "baseline, 2 twice its cost. Only the ratios compare between runs."
    ]
    failed = [row for row in table if not row.ok]
    notes += [f"- FAILED: {row.area}, {row.measure}: {row.check}" for row in failed]
    notes += [
        f"- {row.label}: {verdict}"
        for row in questions
        for verdict in row.verdicts
        if "answers match" not in verdict
        and "skipped" not in verdict
        and "not ported" not in verdict
    ]
    text = render(header, table, notes)
    print(text)
    if args.output != "-":
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        log(f"wrote {args.output}")
    log(f"done in {time.perf_counter() - began:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
