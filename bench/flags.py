#!/usr/bin/env python
"""Flags benchmark: the cost of one flag evaluation, against the GrowthBook and PostHog SDKs.

    python bench/flags.py [--evaluations N] [--database sqlite|postgresql|both] [--repeat R]
                          [--pg-url URL] [--output PATH] [--seed S]

1. Generates N subjects (ASCII and non-ASCII ids, emoji included) whose attributes mostly pass
   the targeting condition of one running experiment ``pricing`` (3 variants, weights
   0.5/0.25/0.25, coverage 0.8), plus 9 more running flags for the request row.
2. Times, in µs per evaluation (median of R passes over all N subjects, interleaved so drift
   hits every row alike): the GrowthBook SDK's ``run()`` on the same experiment (a new instance
   per evaluation, and one reused instance with ``set_attributes``); ``resolve_variant`` without
   consent; the sticky repeat path of ``resolve_variant(consent=True)`` per database against
   GrowthBook's ``InMemoryStickyBucketService``; 10 ``get_variant`` calls in a request; PostHog's
   local evaluation of an equivalent multivariate flag, offline.
3. Checks in the same run that every subject gets the same variant from us as from GrowthBook
   (and exits non-zero on any disagreement), that sticky reads return the stored variant, and
   that a request makes exactly one sticky query.

Progress goes to stderr; the Markdown table goes to stdout and to ``--output``. Read every figure
as a ratio to the GrowthBook baseline measured in the same run (the machine is shared and noisy).
**The PostgreSQL database is wiped** (its ``umetrics_*`` tables are dropped and recreated).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import random
import socket
import sqlite3
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

import growthbook
from flask import Flask, Response
from sqlalchemy import Engine, delete, func, select, text

from flask_umetrics import (
    Resolution,
    UMetrics,
    create_experiment,
    get_variant,
    resolve_variant,
    start_experiment,
)
from flask_umetrics.db import migrate
from flask_umetrics.db.engine import create_umetrics_engine
from flask_umetrics.db.tables import assignments, exposures
from flask_umetrics.db.types import utcnow
from flask_umetrics.flags.growthbook_payload import growthbook_features
from flask_umetrics.flags.request import current_flags

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/umetrics_bench"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "flags-latest.md"
WORK_DIR = Path("/tmp/umetrics-bench")
SEED = 20250106

KEY = "pricing"
VARIANT_KEYS = ("control", "b", "c")
WEIGHTS = (0.5, 0.25, 0.25)
COVERAGE = 0.8
CONDITION: dict[str, Any] = {
    "country": {"$in": ["DE", "AT", "CH"]},
    "app_version": {"$vgte": "2.0.0"},
    "plan": {"$ne": "enterprise"},
}
#: The 10 flags a request evaluates: the experiment above and 9 more with the same targeting.
OTHER_FLAGS = tuple(f"flag-{i}" for i in range(1, 10))
REQUEST_FLAGS = (KEY, *OTHER_FLAGS)
#: A feature with three rules (row 6): a force for a condition, a rollout, then an experiment.
FEATURE_KEY = "new-checkout"
FEATURE: dict[str, Any] = {
    "key": FEATURE_KEY,
    "kind": "flag",
    "coverage": 0.5,
    "conditions": CONDITION,
    "rules": [
        {"type": "force", "condition": {"plan": "enterprise"}, "variant": "on"},
        {"type": "rollout", "condition": {"country": "AT"}, "variant": "on", "coverage": 0.2},
        {"type": "experiment"},
    ],
}

COUNTRIES = (("DE", 60), ("AT", 15), ("CH", 15), ("FR", 5), ("US", 5))
#: "1.9.12" and the pre-release "2.0.0-beta.2" fail ``$vgte 2.0.0``; the others pass.
VERSIONS = (
    ("2.4.1", 40),
    ("2.0.0", 15),
    ("10.1.0", 15),
    ("v2.1.0", 10),
    ("3.0.0-rc.1", 10),
    ("1.9.12", 7),
    ("2.0.0-beta.2", 3),
)
PLANS = (("free", 50), ("pro", 30), ("team", 15), ("enterprise", 5))
NON_ASCII_STEMS = ("usér", "ユーザー", "пользователь", "😀-fan", "naïve-\U0001d518ser")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fail(message: str) -> NoReturn:
    log(f"FAILED: {message}")
    raise SystemExit(f"bench/flags.py: {message}")


# -- subjects ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    id: str
    #: What the host app's subject loader returns (no ``id``: resolve_variant adds it).
    attributes: dict[str, Any]
    #: The same with ``id``, as GrowthBook wants them.
    gb_attributes: dict[str, Any]


def _pick(rng: random.Random, choices: Sequence[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def make_subjects(n: int, seed: int) -> list[Subject]:
    """N distinct ids, 30 % non-ASCII (accents, CJK, Cyrillic, astral-plane characters)."""
    rng = random.Random(seed)
    subjects = []
    for i in range(n):
        if rng.random() < 0.3:
            subject_id = f"{rng.choice(NON_ASCII_STEMS)}-{i}"
        else:
            subject_id = f"user-{i}-{rng.getrandbits(32):08x}"
        attributes = {
            "country": _pick(rng, COUNTRIES),
            "app_version": _pick(rng, VERSIONS),
            "plan": _pick(rng, PLANS),
        }
        subjects.append(Subject(subject_id, attributes, {"id": subject_id, **attributes}))
    return subjects


# -- timing ------------------------------------------------------------------------------------

#: One pass over every subject; returns the seconds it took (setup stays outside).
Pass = Callable[[], float]


@dataclass
class Timing:
    """µs per evaluation of each pass; the median is what the table shows."""

    samples: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


def measure(passes: dict[str, Pass], repeat: int, evaluations: int) -> dict[str, Timing]:
    """Run the passes round-robin ``repeat`` times, so noise and drift hit every row alike."""
    timings = {name: Timing() for name in passes}
    for _ in range(repeat):
        for name, run in passes.items():
            gc.collect()
            timings[name].samples.append(run() / evaluations * 1e6)
    for name, timing in timings.items():
        spread = f"{min(timing.samples):.1f}-{max(timing.samples):.1f}"
        log(f"  {name}: {timing.median:.1f} µs per evaluation (runs {spread})")
    return timings


def once(run: Pass, evaluations: int) -> Timing:
    return Timing([run() / evaluations * 1e6])


# -- GrowthBook --------------------------------------------------------------------------------


def gb_experiment() -> growthbook.Experiment[int]:
    """The same experiment for the GrowthBook SDK: key, seed, weights, coverage, condition."""
    return growthbook.Experiment(
        key=KEY,
        variations=list(range(len(VARIANT_KEYS))),
        weights=list(WEIGHTS),
        coverage=COVERAGE,
        condition=CONDITION,
        seed=KEY,
        hashVersion=2,
        bucketVersion=1,
        meta=[{"key": k} for k in VARIANT_KEYS],
    )


def gb_outcome(result: growthbook.Result[int]) -> tuple[str, bool]:
    return VARIANT_KEYS[result.variationId], result.inExperiment


def gb_new_instance(subjects: list[Subject], experiment: growthbook.Experiment[int]) -> Pass:
    """A GrowthBook instance per evaluation, as a per-request instance would be."""

    def run() -> float:
        began = time.perf_counter()
        for s in subjects:
            growthbook.GrowthBook(attributes=s.gb_attributes).run(experiment)
        return time.perf_counter() - began

    return run


def gb_reused(subjects: list[Subject], experiment: growthbook.Experiment[int]) -> Pass:
    """One long-lived instance, re-pointed at each subject with ``set_attributes``."""
    gb = growthbook.GrowthBook()

    def run() -> float:
        began = time.perf_counter()
        for s in subjects:
            gb.set_attributes(s.gb_attributes)
            gb.run(experiment)
        return time.perf_counter() - began

    return run


@dataclass
class GrowthBookSticky:
    """GrowthBook's sticky bucketing with its in-memory service (nothing leaves the process)."""

    subjects: list[Subject]
    experiment: growthbook.Experiment[int]
    service: growthbook.InMemoryStickyBucketService = field(
        default_factory=growthbook.InMemoryStickyBucketService
    )

    def instance(self, attributes: dict[str, Any] | None = None) -> growthbook.GrowthBook:
        return growthbook.GrowthBook(
            attributes=attributes,
            sticky_bucket_service=self.service,
            sticky_bucket_identifier_attributes=["id"],
        )

    def reused(self) -> Pass:
        gb = self.instance()

        def run() -> float:
            began = time.perf_counter()
            for s in self.subjects:
                gb.set_attributes(s.gb_attributes)  # loads the subject's stored assignments
                gb.run(self.experiment)
            return time.perf_counter() - began

        return run

    def new_instance(self) -> Pass:
        def run() -> float:
            began = time.perf_counter()
            for s in self.subjects:
                gb = self.instance(s.gb_attributes)
                gb.refresh_sticky_buckets()
                gb.run(self.experiment)
            return time.perf_counter() - began

        return run

    def results(self) -> list[growthbook.Result[int]]:
        gb = self.instance()
        out = []
        for s in self.subjects:
            gb.set_attributes(s.gb_attributes)
            out.append(gb.run(self.experiment))
        return out


# -- flask-umetrics ----------------------------------------------------------------------------


class SubjectHolder:
    """The subject the bench's subject loader returns for the current request."""

    def __init__(self) -> None:
        self.current: Subject | None = None

    def load(self) -> tuple[str | None, dict[str, Any]]:
        if self.current is None:
            return None, {}
        return self.current.id, self.current.attributes


@dataclass
class Target:
    """One database: its app, engine and the request subject holder."""

    name: str
    app: Flask
    holder: SubjectHolder

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.extensions["umetrics"].engine
        return engine


def reset_sqlite(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    engine = create_umetrics_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return url


def reset_postgres(url: str) -> str:
    """Drop every ``umetrics_*`` table of the bench database, then create the schema."""
    engine = create_umetrics_engine(url)
    try:
        with engine.begin() as connection:
            names = connection.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                    " AND tablename LIKE 'umetrics\\_%'"
                )
            ).scalars()
            quoted = [f'"{name}"' for name in names]
            if quoted:
                connection.execute(text(f"DROP TABLE {', '.join(quoted)} CASCADE"))
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return url


def make_target(name: str, url: str) -> Target:
    """An app on ``url`` with the experiment and 9 more flags running.

    ``UMETRICS_CONSENT_REQUIRED=False`` so a known subject in a request has consent without a
    cookie: that is the sticky path (one stored-assignment query per request).
    """
    holder = SubjectHolder()
    extension = UMetrics()
    extension.subject_loader(holder.load)
    app = Flask(f"bench_flags_{name}")
    app.config.update(
        UMETRICS_DATABASE_URL=url,
        UMETRICS_SCHEDULER="off",
        UMETRICS_BUILTIN_COLLECTORS=False,
        UMETRICS_CONSENT_REQUIRED=False,
    )
    extension.init_app(app)
    with app.app_context():
        create_experiment(
            {
                "key": KEY,
                "variants": [
                    {"key": k, "weight": w} for k, w in zip(VARIANT_KEYS, WEIGHTS, strict=True)
                ],
                "coverage": COVERAGE,
                "seed": KEY,
                "conditions": CONDITION,
                "goal": {"event": "purchased"},
            }
        )
        start_experiment(KEY)
        for index, key in enumerate(OTHER_FLAGS):
            spec: dict[str, Any] = {"key": key, "conditions": CONDITION}
            if index % 2:
                spec.update(kind="flag", coverage=0.5)  # a boolean off/on rollout
            else:
                spec.update(
                    variants=[{"key": "control"}, {"key": "treatment"}],
                    coverage=0.9,
                    goal={"event": "purchased"},
                )
            create_experiment(spec)
            start_experiment(key)
        create_experiment(FEATURE)
        start_experiment(FEATURE_KEY)
    return Target(name, app, holder)


def ours_hash(app: Flask, subjects: list[Subject]) -> Pass:
    """``resolve_variant`` without consent: targeting and hash, nothing read or written."""

    def run() -> float:
        with app.app_context():
            began = time.perf_counter()
            for s in subjects:
                resolve_variant(KEY, subject_id=s.id, consent=False, attributes=s.attributes)
            return time.perf_counter() - began

    return run


def ours_sticky(app: Flask, subjects: list[Subject]) -> Pass:
    """``resolve_variant(consent=True)``: the first pass stores, later passes read."""

    def run() -> float:
        with app.app_context():
            began = time.perf_counter()
            for s in subjects:
                resolve_variant(KEY, subject_id=s.id, consent=True, attributes=s.attributes)
            return time.perf_counter() - began

    return run


def ours_results(app: Flask, subjects: list[Subject], consent: bool) -> list[Resolution]:
    with app.app_context():
        return [
            resolve_variant(KEY, subject_id=s.id, consent=consent, attributes=s.attributes)
            for s in subjects
        ]


def in_request(target: Target, subjects: list[Subject], keys: Sequence[str]) -> Pass:
    """One request per subject evaluating ``keys`` with ``get_variant``, after_request included.

    With no keys this is the bare request the flag rows are measured against."""
    app, holder = target.app, target.holder

    def run() -> float:
        began = time.perf_counter()
        for s in subjects:
            holder.current = s
            with app.test_request_context("/"):
                for key in keys:
                    get_variant(key)
                app.process_response(Response())
        holder.current = None
        return time.perf_counter() - began

    return run


@dataclass
class RequestCheck:
    requests: int = 0
    one_query: int = 0
    sticky_flags: int = 0
    in_experiment_flags: int = 0
    pricing_matches: int = 0


def check_requests(
    target: Target, subjects: list[Subject], expected: list[Resolution]
) -> RequestCheck:
    """Every request: exactly one sticky query, stored variants served, ``pricing`` as row 2."""
    check = RequestCheck()
    app, holder = target.app, target.holder
    for s, hashed in zip(subjects, expected, strict=True):
        holder.current = s
        with app.test_request_context("/"):
            variants = {key: get_variant(key) for key in REQUEST_FLAGS}
            flags = current_flags()
            check.requests += 1
            check.one_query += flags.sticky_queries == 1
            for result in flags.results.values():
                check.in_experiment_flags += result.in_experiment
                check.sticky_flags += result.reason == "sticky"
            check.pricing_matches += variants[KEY] == hashed.variant
            app.process_response(Response())
    holder.current = None
    return check


def stored_counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(assignments)).scalar_one()
        exposed = connection.execute(select(func.count()).select_from(exposures)).scalar_one()
    return int(stored), int(exposed)


def clear_served(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(delete(assignments))
        connection.execute(delete(exposures))


# -- PostHog -----------------------------------------------------------------------------------


def posthog_definition(key: str, rollout: int) -> dict[str, Any]:
    """The experiment as a PostHog multivariate flag: the same property filters and rollout."""
    return {
        "id": 1 if key == KEY else 2,
        "key": key,
        "active": True,
        "filters": {
            "groups": [
                {
                    "properties": [
                        {"key": "country", "operator": "exact", "value": ["DE", "AT", "CH"]},
                        {"key": "app_version", "operator": "semver_gte", "value": "2.0.0"},
                        {"key": "plan", "operator": "is_not", "value": ["enterprise"]},
                    ],
                    "rollout_percentage": rollout,
                }
            ],
            "multivariate": {
                "variants": [
                    {"key": k, "rollout_percentage": round(w * 100)}
                    for k, w in zip(VARIANT_KEYS, WEIGHTS, strict=True)
                ]
            },
        },
    }


@contextmanager
def no_network() -> Iterator[list[str]]:
    """Refuse (and record) every Python-level socket connection while PostHog runs."""
    attempts: list[str] = []
    original = socket.socket.connect

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(repr(address))
        raise OSError("bench/flags.py: PostHog must evaluate offline")

    socket.socket.connect = refuse  # type: ignore[method-assign,assignment]
    try:
        yield attempts
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]


@dataclass
class PostHogOutcome:
    timing: Timing
    note: str
    counts: Counter[str] = field(default_factory=Counter)
    targeting_agrees: int = 0
    targeting_total: int = 0
    #: app_version -> subjects whose targeting PostHog decides differently.
    targeting_differs: Counter[str] = field(default_factory=Counter)


def run_posthog(
    subjects: list[Subject], ours: list[Resolution]
) -> tuple[Pass | None, PostHogOutcome]:
    """A client with definitions injected as PostHog's own tests do (``client.feature_flags``),
    no personal API key (so no poller) and ``send=False``; evaluated through ``evaluate_flags``
    with ``only_evaluate_locally=True``."""
    try:
        from posthog import Posthog
    except ImportError:
        return None, PostHogOutcome(
            Timing(note="not measured"), "not measured: the `posthog` package is not installed"
        )
    client = Posthog(
        "phc_bench_offline",
        host="http://127.0.0.1:9",
        send=False,
        disable_geoip=True,
        enable_exception_autocapture=False,
    )
    client.feature_flags = [posthog_definition(KEY, round(COVERAGE * 100))]

    def evaluate(client_: Any, key: str, s: Subject) -> Any:
        flags = client_.evaluate_flags(
            s.id, person_properties=s.attributes, only_evaluate_locally=True, flag_keys=[key]
        )
        return flags.get_flag(key, send_feature_flag_events=False)

    outcome = PostHogOutcome(Timing(), "")
    with no_network() as attempts:
        values = [evaluate(client, KEY, s) for s in subjects]
        # Targeting alone (rollout 100 %) must agree with ours: same filters, same attributes.
        full = Posthog("phc_bench_offline", host="http://127.0.0.1:9", send=False)
        full.feature_flags = [posthog_definition("pricing-targeting", 100)]
        for s, result in zip(subjects, ours, strict=True):
            matched = evaluate(full, "pricing-targeting", s) is not False
            if matched == (result.reason != "targeting"):
                outcome.targeting_agrees += 1
            else:
                outcome.targeting_differs[s.attributes["app_version"]] += 1
        outcome.targeting_total = len(subjects)
        full.shutdown()
    if attempts or any(v is None for v in values):
        client.shutdown()
        why = f"{len(attempts)} network attempts" if attempts else "flags left unresolved"
        note = f"not measured: it could not evaluate the flag offline ({why})"
        return None, PostHogOutcome(Timing(note="not measured"), note)
    outcome.counts = Counter(str(v) if v is not False else "not matched" for v in values)

    def run() -> float:
        with no_network() as attempts:
            began = time.perf_counter()
            for s in subjects:
                evaluate(client, KEY, s)
            elapsed = time.perf_counter() - began
        if attempts:
            fail(f"PostHog tried the network during a timed pass: {attempts[:3]}")
        return elapsed

    return run, outcome


# -- profile -----------------------------------------------------------------------------------


def profile_ours(app: Flask, subjects: list[Subject]) -> str:
    """Where one pass of ``resolve_variant(consent=False)`` spends its time (top 25 by own
    time), for the report when we are slower than GrowthBook."""
    run = ours_hash(app, subjects)
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.strip_dirs().sort_stats("tottime").print_stats(25)
    return buffer.getvalue()


# -- report ------------------------------------------------------------------------------------


@dataclass
class Line:
    """A table row: label, timing, and the row it is compared with (None: it is a baseline)."""

    number: str
    label: str
    timing: Timing
    baseline: str | None = None


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def machine_line(pg_url: str | None) -> str:
    mem_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    load = os.getloadavg()[0]
    parts = [
        f"Machine: {os.cpu_count()} CPUs (nproc), {mem_kib / 1024**2:.1f} GiB RAM, "
        f"load average {load:.1f} at the start",
        f"Python {sys.version.split()[0]}",
        f"SQLite {sqlite3.sqlite_version}",
    ]
    if pg_url is not None:
        engine = create_umetrics_engine(pg_url)
        try:
            with engine.connect() as connection:
                found = connection.execute(text("SHOW server_version")).scalar()
        finally:
            engine.dispose()
        parts.append(f"PostgreSQL {str(found).split()[0]}")
    parts.append(f"growthbook {package_version('growthbook')}")
    parts.append(f"posthog {package_version('posthog')}")
    return ", ".join(parts)


def render(header: str, lines: list[Line], notes: list[str]) -> str:
    by_number = {line.number: line for line in lines}
    out = [
        header,
        "",
        "| # | evaluation | µs per evaluation | compared with | ratio |",
        "|---|---|---:|---|---:|",
    ]
    for line in lines:
        median = line.timing.median
        value = f"{median:.1f}" if median is not None else line.timing.note or "—"
        base = by_number.get(line.baseline) if line.baseline else None
        base_median = base.timing.median if base is not None else None
        if line.baseline is None:
            against, ratio = "baseline", "1.00" if median is not None else "—"
        elif median is None or base_median is None:
            against, ratio = f"row {line.baseline}", "—"
        else:
            against, ratio = f"row {line.baseline}", f"{median / base_median:.2f}"
        out.append(f"| {line.number} | {line.label} | {value} | {against} | {ratio} |")
    out += ["", *notes]
    return "\n".join(out)


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--evaluations", type=int, default=2000, help="distinct subjects (N)")
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql", "both"),
        default="both",
        help="databases for the sticky and request rows",
    )
    parser.add_argument(
        "--db-evaluations",
        type=int,
        default=300,
        help="subjects for the database rows 3-4 (the first M of N)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="passes per row (median shown)")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed of the subjects")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("UMETRICS_BENCH_DATABASE_URL", DEFAULT_PG_URL),
        help="PostgreSQL database to WIPE and use (its umetrics_* tables are dropped)",
    )
    parser.add_argument(
        "--output",
        default=str(DEFAULT_OUTPUT),
        help="also write the table here ('-' for stdout only)",
    )
    args = parser.parse_args(argv)
    if args.evaluations < 10 or args.db_evaluations < 10:
        parser.error("--evaluations and --db-evaluations must be at least 10")
    if args.repeat < 5:
        parser.error("--repeat must be at least 5 (the table shows medians of >= 5 runs)")
    return args


def verify_against_growthbook(
    subjects: list[Subject], ours: list[Resolution], experiment: growthbook.Experiment[int]
) -> tuple[int, Counter[str]]:
    """Our (variant, in experiment) against GrowthBook's for every subject; exit on a mismatch."""
    gb = growthbook.GrowthBook()
    agree = 0
    reasons: Counter[str] = Counter()
    mismatches = []
    for s, result in zip(subjects, ours, strict=True):
        gb.set_attributes(s.gb_attributes)
        theirs = gb_outcome(gb.run(experiment))
        reasons[result.reason if result.reason != "hash" else str(result.variant)] += 1
        if (result.variant, result.in_experiment) == theirs:
            agree += 1
        else:
            mismatches.append((s.id, s.attributes, (result.variant, result.reason), theirs))
    if mismatches:
        for mismatch in mismatches[:10]:
            log(f"  disagreement: {mismatch}")
        fail(f"our variant differs from GrowthBook's for {len(mismatches)} of {len(subjects)}")
    return agree, reasons


@dataclass
class Report:
    """What the sections of the run add to the table and the notes under it."""

    lines: list[Line] = field(default_factory=list)
    #: Sentences naming each group's baseline row.
    baselines: list[str] = field(default_factory=list)
    #: One bullet per correctness check and measurement detail.
    checks: list[str] = field(default_factory=list)


#: Row letters follow this order: 3c/3f/4a are SQLite, 3d/3g/4b PostgreSQL.
DATABASES = ("sqlite", "postgresql")
LABELS = {"sqlite": "SQLite file", "postgresql": "PostgreSQL"}


def core_rows(
    report: Report,
    app: Flask,
    subjects: list[Subject],
    experiment: growthbook.Experiment[int],
    posthog_pass: Pass | None,
    posthog: PostHogOutcome,
    repeat: int,
) -> str:
    """Rows 1, 2 and 5 (no database on the path); returns the number of the baseline row."""
    n = len(subjects)
    log(f"rows 1, 2, 5: {repeat} interleaved passes over {n:,} subjects")
    passes: dict[str, Pass] = {
        "1a": gb_new_instance(subjects, experiment),
        "1b": gb_reused(subjects, experiment),
        "2": ours_hash(app, subjects),
    }
    if posthog_pass is not None:
        passes["5"] = posthog_pass
    for run in passes.values():  # warm-up: imports, caches, the definition cache
        run()
    timings = measure(passes, repeat, n)
    if posthog_pass is not None:
        posthog.timing = timings["5"]
    baseline = "1a" if _median(timings["1a"]) < _median(timings["1b"]) else "1b"
    gb_rows = {
        "1a": "GrowthBook SDK `run()`, a new `GrowthBook` per evaluation",
        "1b": "GrowthBook SDK `run()`, one reused instance + `set_attributes`",
    }
    for number, label in gb_rows.items():
        other = None if number == baseline else baseline
        report.lines.append(Line(number, label, timings[number], other))
    report.lines.append(
        Line("2", "`resolve_variant(consent=False)`: targeting + hash", timings["2"], baseline)
    )
    report.baselines.append(
        f"Rows 1, 2, 4 and 5 are compared with the faster GrowthBook row ({baseline}), the "
        "equivalent of `resolve_variant(consent=False)`."
    )
    return baseline


def feature_passes(app: Flask, subjects: list[Subject]) -> tuple[Pass, Pass, Counter[str]]:
    """The three-rule feature: GrowthBook's ``eval_feature`` pass, ours, and GrowthBook's
    sources per subject, after checking that every subject gets the same value from both (our
    definition translated to GrowthBook's JSON); exits on any disagreement."""
    with app.app_context():
        definitions = app.extensions["umetrics"].flag_cache.definitions("default")
        features = growthbook_features({FEATURE_KEY: definitions[FEATURE_KEY]}, utcnow())
    gb = growthbook.GrowthBook(features=features.features)
    sources: Counter[str] = Counter()
    with app.app_context():
        for s in subjects:
            ours = resolve_variant(
                FEATURE_KEY, subject_id=s.id, consent=False, attributes=s.attributes
            )
            gb.set_attributes(s.gb_attributes)
            theirs = gb.eval_feature(FEATURE_KEY)
            if ours.value != theirs.value:
                fail(f"feature {FEATURE_KEY}: {s.id!r} gets {ours.value} from us, {theirs.value}")
            sources[theirs.source] += 1

    def gb_pass() -> float:
        began = time.perf_counter()
        for s in subjects:
            gb.set_attributes(s.gb_attributes)
            gb.eval_feature(FEATURE_KEY)
        return time.perf_counter() - began

    def ours_pass() -> float:
        with app.app_context():
            began = time.perf_counter()
            for s in subjects:
                resolve_variant(
                    FEATURE_KEY, subject_id=s.id, consent=False, attributes=s.attributes
                )
            return time.perf_counter() - began

    return gb_pass, ours_pass, sources


def feature_rows(report: Report, app: Flask, subjects: list[Subject], repeat: int) -> None:
    """Row 6: the three-rule feature, ours against the GrowthBook SDK's ``eval_feature``."""
    gb_pass, ours_pass, sources = feature_passes(app, subjects)
    n = len(subjects)
    log(f"row 6: a feature with three rules, {repeat} interleaved passes over {n:,} subjects")
    passes: dict[str, Pass] = {"6a": gb_pass, "6b": ours_pass}
    for run in passes.values():
        run()
    timings = measure(passes, repeat, n)
    label = "GrowthBook SDK `eval_feature()`, a feature with 3 rules, one reused instance"
    report.lines.append(Line("6a", label, timings["6a"], None))
    report.lines.append(
        Line("6b", "`resolve_variant(consent=False)`, the same feature", timings["6b"], "6a")
    )
    split = ", ".join(f"{k} {v:,}" for k, v in sorted(sources.items()))
    report.checks.append(
        f"- Feature `{FEATURE_KEY}` (force for `plan = enterprise`, a 20% rollout for `country = "
        f"AT`, then the experiment): our value equals GrowthBook's `eval_feature` for "
        f"**{n:,}/{n:,}** subjects (GrowthBook's sources: {split})."
    )


def _median(timing: Timing) -> float:
    median = timing.median
    if median is None:
        raise ValueError("no samples")
    return median


def sticky_rows(
    report: Report,
    targets: dict[str, Target],
    subjects: list[Subject],
    hashed: list[Resolution],
    experiment: growthbook.Experiment[int],
    repeat: int,
) -> None:
    """Row 3: the first evaluation with consent stores, repeats read; ours against GrowthBook's
    in-memory sticky buckets. Checks every repeat read returns the stored variant."""
    n = len(subjects)
    in_experiment = sum(r.in_experiment for r in hashed)
    log(f"row 3: sticky assignments over {n:,} subjects (first stores, repeats read)")
    gb_sticky = GrowthBookSticky(subjects, experiment)
    gb_first = once(gb_sticky.reused(), n)
    passes: dict[str, Pass] = {"3a": gb_sticky.new_instance(), "3b": gb_sticky.reused()}
    gb_results = gb_sticky.results()
    gb_used = sum(r.stickyBucketUsed for r in gb_results)
    gb_same = sum(
        gb_outcome(r) == (h.variant, h.in_experiment)
        for r, h in zip(gb_results, hashed, strict=True)
    )
    if gb_used != in_experiment or gb_same != n:
        fail(f"GrowthBook sticky: {gb_used} sticky, {gb_same} same variants of {n}")
    report.checks.append(
        f"- GrowthBook sticky repeat: {gb_used:,} of {n:,} from the sticky bucket, "
        f"{gb_same:,}/{n:,} the same variant as row 2. Its service is a dict in the process; "
        "ours goes to the database on every evaluation (a connection checkout and a `SELECT`)."
    )
    first_writes: dict[str, Timing] = {}
    for name, target in targets.items():
        clear_served(target.engine)
        first_writes[name] = once(ours_sticky(target.app, subjects), n)
        passes[f"3-{name}"] = ours_sticky(target.app, subjects)
        stored, exposed = stored_counts(target.engine)
        again = ours_results(target.app, subjects, consent=True)
        sticky = sum(r.reason == "sticky" for r in again)
        same = sum(
            (r.variant, r.in_experiment) == (h.variant, h.in_experiment)
            for r, h in zip(again, hashed, strict=True)
        )
        if sticky != in_experiment or same != n or stored != in_experiment:
            fail(
                f"{name}: {sticky} sticky reads, {stored} stored, {same} same variants; "
                f"expected {in_experiment}, {in_experiment}, {n}"
            )
        report.checks.append(
            f"- Sticky, {LABELS[name]}: {stored:,} assignments and {exposed:,} exposures "
            f"stored; on repeat {sticky:,} of {n:,} read the stored variant (the other "
            f"{n - sticky:,} are outside the experiment and still make the lookup), "
            f"{same:,}/{n:,} the same variant as row 2."
        )
    timings = measure(passes, repeat, n)
    base = "3a" if _median(timings["3a"]) < _median(timings["3b"]) else "3b"
    gb_rows = {
        "3a": "GrowthBook + `InMemoryStickyBucketService`, repeat: a new instance "
        "+ `refresh_sticky_buckets()` per evaluation",
        "3b": "GrowthBook + `InMemoryStickyBucketService`, repeat: a reused instance "
        "+ `set_attributes`",
    }
    for number, label in gb_rows.items():
        report.lines.append(Line(number, label, timings[number], None if number == base else base))
    for name in targets:
        letter = "cd"[DATABASES.index(name)]
        label = (
            "`resolve_variant(consent=True)`, repeat (reads the stored assignment): " + LABELS[name]
        )
        report.lines.append(Line(f"3{letter}", label, timings[f"3-{name}"], base))
    report.lines.append(
        Line(
            "3e",
            "GrowthBook + `InMemoryStickyBucketService`, first evaluation (saves), 1 run",
            gb_first,
            None,
        )
    )
    for name in targets:
        letter = "fg"[DATABASES.index(name)]
        label = (
            "`resolve_variant(consent=True)`, first evaluation (stores assignment + exposure), "
            f"1 run: {LABELS[name]}"
        )
        report.lines.append(Line(f"3{letter}", label, first_writes[name], "3e"))
    report.baselines.append(
        f"Rows 3c-3d are compared with the faster sticky GrowthBook row ({base}), 3f-3g "
        "(first evaluations) with GrowthBook's first evaluation (3e)."
    )


def request_rows(
    report: Report,
    targets: dict[str, Target],
    subjects: list[Subject],
    hashed: list[Resolution],
    baseline: str,
    repeat: int,
) -> None:
    """Row 4: 10 ``get_variant`` calls per request, per flag, against the bare request."""
    n = len(subjects)
    log(f"row 4: 10 flags in each of {n:,} requests (one sticky query per request)")
    passes: dict[str, Pass] = {}
    for name, target in targets.items():
        in_request(target, subjects, REQUEST_FLAGS)()  # first requests store the other 9 flags
        check = check_requests(target, subjects, hashed)
        if check.one_query != n or check.pricing_matches != n:
            fail(f"{name} requests: {check}")
        if check.sticky_flags != check.in_experiment_flags:
            fail(f"{name} requests: stored variants not served: {check}")
        report.checks.append(
            f"- Request, {LABELS[name]}: {check.one_query:,}/{n:,} requests made exactly one "
            f"sticky query; {check.sticky_flags:,} of {n * len(REQUEST_FLAGS):,} flag "
            "evaluations served a stored variant (the rest are outside their flag's targeting "
            f"or coverage); `pricing` equals row 2 in {check.pricing_matches:,}/{n:,}."
        )
        passes[f"bare-{name}"] = in_request(target, subjects, ())
        passes[f"one-{name}"] = in_request(target, subjects, REQUEST_FLAGS[:1])
        passes[f"flags-{name}"] = in_request(target, subjects, REQUEST_FLAGS)
    timings = measure(passes, repeat, n)
    per_request = []
    for name in targets:
        letter = "ab"[DATABASES.index(name)]
        bare, one, full = (timings[f"{kind}-{name}"] for kind in ("bare", "one", "flags"))
        pairs = zip(full.samples, bare.samples, strict=True)
        per_flag = Timing([(f - b) / len(REQUEST_FLAGS) for f, b in pairs])
        # The first flag carries the request's fixed cost (flag context, sticky query).
        fixed = _median(one) - _median(bare)
        marginal = (_median(full) - _median(one)) / (len(REQUEST_FLAGS) - 1)
        label = (
            "in a request: 10 `get_variant` calls, per flag, incl. the request's one sticky "
            f"query: {LABELS[name]}"
        )
        report.lines.append(Line(f"4{letter}", label, per_flag, baseline))
        per_request.append(
            f"{LABELS[name]}: {_median(full):.0f} µs per request with the 10 flags, "
            f"{_median(bare):.0f} µs without; the first flag adds {fixed:.0f} µs (the flag "
            f"context and the sticky query), each further flag {marginal:.0f} µs"
        )
    report.checks.append(
        "- Row 4 is (the request with the 10 flags minus the same request without flags) / 10; "
        + "; ".join(per_request)
        + ". A request is `test_request_context` + `process_response` (after_request hooks "
        "included)."
    )


def posthog_notes(report: Report, posthog: PostHogOutcome, measured: bool) -> None:
    if not measured:
        report.checks.append(f"- PostHog: {posthog.note}.")
        return
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(posthog.counts.items()))
    differ = ", ".join(f"`{k}` ({v:,})" for k, v in sorted(posthog.targeting_differs.items()))
    agree = f"{posthog.targeting_agrees:,}/{posthog.targeting_total:,}"
    report.checks.append(
        "- PostHog: definitions injected as `client.feature_flags` (no personal API key, "
        "`send=False`; Python sockets refused during its runs: 0 connection attempts); a "
        "multivariate flag with the same filters (`exact` DE/AT/CH, `semver_gte` 2.0.0, "
        "`is_not` enterprise) and an 80 % rollout. Its hash is SHA-1, not GrowthBook's, so its "
        f"variants differ by design ({counts}). With a 100 % rollout its targeting agrees with "
        f"ours for {agree}"
        + (
            f"; it differs only for app versions {differ}: PostHog's `semver_gte` ignores the "
            "pre-release tag, GrowthBook's `$vgte` (and ours) ranks `2.0.0-beta.2` below "
            "`2.0.0`."
            if differ
            else "."
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    n, repeat = args.evaluations, args.repeat
    m = min(n, args.db_evaluations)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    databases = DATABASES if args.database == "both" else (args.database,)
    subjects = make_subjects(n, args.seed)
    non_ascii = sum(not s.id.isascii() for s in subjects)
    log(f"{n:,} subjects ({non_ascii:,} non-ASCII ids); databases: {', '.join(databases)}")
    header = machine_line(args.pg_url if "postgresql" in databases else None)

    targets: dict[str, Target] = {}
    for name in databases:
        log(f"setting up {name} (fresh schema, 10 running flags)")
        if name == "sqlite":
            url = reset_sqlite(WORK_DIR / "flags.sqlite")
        else:
            url = reset_postgres(args.pg_url)
        targets[name] = make_target(name, url)
    first = targets[databases[0]]

    experiment = gb_experiment()
    log("checking our variants against GrowthBook's")
    hashed = ours_results(first.app, subjects, consent=False)
    agree, reasons = verify_against_growthbook(subjects, hashed, experiment)
    in_experiment = sum(r.in_experiment for r in hashed)
    log("PostHog: offline local evaluation")
    posthog_pass, posthog = run_posthog(subjects, hashed)
    log(f"  {posthog.note or dict(posthog.counts)}")

    report = Report()
    baseline = core_rows(report, first.app, subjects, experiment, posthog_pass, posthog, repeat)
    sticky_rows(report, targets, subjects[:m], hashed[:m], experiment, repeat)
    request_rows(report, targets, subjects[:m], hashed[:m], baseline, repeat)
    feature_rows(report, first.app, subjects, repeat)
    report.lines.append(
        Line(
            "5",
            "PostHog `evaluate_flags(..., only_evaluate_locally=True)`, offline",
            posthog.timing,
            baseline,
        )
    )
    split = ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items()))
    report.checks.insert(
        0,
        f"- Agreement: our variant (row 2) equals GrowthBook's for **{agree:,}/{n:,}** subjects "
        f"(variant and in-experiment flag compared; {split}).",
    )
    posthog_notes(report, posthog, posthog_pass is not None)
    report.baselines.append("A ratio above 1 means slower than the row compared with.")
    notes = [" ".join(report.baselines), "", *report.checks]

    ours_median, base_median = timings_of(report, "2"), timings_of(report, baseline)
    if ours_median > base_median:
        log("row 2 is slower than GrowthBook: profiling one pass")
        profile = profile_ours(first.app, subjects)
        print(profile, file=sys.stderr)
        notes += ["", "Row 2 was slower: profile of one pass (top 25 by own time):"]
        notes += ["", "```", profile.strip("\n"), "```"]

    header += (
        f". Data: {n:,} subjects ({non_ascii:,} with non-ASCII ids, {in_experiment:,} in the "
        f"experiment); rows 3-4 use the first {m:,}. Experiment `{KEY}`: 3 variants "
        "0.5/0.25/0.25, coverage 0.8, condition `country $in [DE, AT, CH]`, "
        "`app_version $vgte 2.0.0`, `plan $ne enterprise`. µs per evaluation: the median of "
        f"{repeat} interleaved passes over all subjects."
    )
    table = render(header, report.lines, notes)
    print(table)
    if args.output != "-":
        Path(args.output).write_text(table + "\n", encoding="utf-8")
        log(f"wrote {args.output}")
    for target in targets.values():
        target.engine.dispose()
    log(f"done in {time.perf_counter() - began:.0f} s")
    return 0


def timings_of(report: Report, number: str) -> float:
    return _median(next(line.timing for line in report.lines if line.number == number))


if __name__ == "__main__":
    sys.exit(main())
