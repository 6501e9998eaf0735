"""Fixtures: every database test runs on SQLite and, when configured, on PostgreSQL.

``UMETRICS_TEST_POSTGRES_URL`` points at a PostgreSQL database the suite may wipe; with
``UMETRICS_REQUIRE_POSTGRES=1`` (CI) a missing PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, text

from flask_umetrics import UMetrics
from flask_umetrics.db import migrate
from flask_umetrics.db.engine import create_umetrics_engine
from flask_umetrics.db.tables import metadata
from flask_umetrics.warn_once import forget_warnings

BACKENDS = ("sqlite", "postgresql")


def postgres_url() -> str | None:
    return os.environ.get("UMETRICS_TEST_POSTGRES_URL") or None


def _require_postgres() -> str:
    url = postgres_url()
    if url is None:
        if os.environ.get("UMETRICS_REQUIRE_POSTGRES") == "1":
            pytest.fail("UMETRICS_REQUIRE_POSTGRES=1 but UMETRICS_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL not configured (set UMETRICS_TEST_POSTGRES_URL)")
    return url


def reset_postgres_schema(engine: Engine) -> None:
    """Drop every umetrics table and the version table, whatever revision they are at."""
    with engine.begin() as connection:
        rows = connection.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename LIKE 'umetrics\\_%'"
            )
        ).scalars()
        for table in rows:
            connection.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    url = _require_postgres()
    engine = create_umetrics_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - turned into a clear skip/fail
        if os.environ.get("UMETRICS_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL at {url} does not answer: {exc}")
        pytest.skip(f"PostgreSQL at {url} does not answer")
    reset_postgres_schema(engine)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("template") / "umetrics.db"
    engine = create_umetrics_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.exec_driver_sql("PRAGMA journal_mode=DELETE")
    engine.dispose()
    return path


def truncate_all(engine: Engine) -> None:
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty umetrics database of the requested backend."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "umetrics.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    engine: Engine = request.getfixturevalue("postgres_engine")
    truncate_all(engine)
    return str(engine.url.render_as_string(hide_password=False))


AppFactory = Callable[..., Flask]


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    """Configuration warnings are logged once per process: each test starts with none logged."""
    forget_warnings()


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[AppFactory]:
    """Build test apps on the test database: ``make_app(extension=None, **config)``."""
    apps: list[Flask] = []

    def factory(extension: UMetrics | None = None, **config: Any) -> Flask:
        app = Flask(f"test_app_{len(apps)}", instance_path=str(tmp_path / "instance"))
        # Built-in collectors and the GA4 sync job off unless a test asks: tests assert exact
        # collector and job lists.
        app.config.update(
            TESTING=True,
            UMETRICS_DATABASE_URL=database_url,
            UMETRICS_BUILTIN_COLLECTORS=False,
            UMETRICS_GA4_SYNC_SCHEDULE="off",
        )
        app.config.update(config)
        (extension or UMetrics()).init_app(app)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        state = app.extensions["umetrics"]
        if state.scheduler is not None:
            state.scheduler.shutdown()
        if state.owns_engine:
            state.engine.dispose()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


def allow_all(extension: UMetrics) -> None:
    """An authorizer that says yes to everything (for tests about something else)."""
    extension.authorizer(lambda permission, scope_id: True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per backend, so a run shows at a glance that both databases were tested."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in BACKENDS}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            for name in BACKENDS:
                if f"[{name}" in nodeid or f"-{name}]" in nodeid or f"-{name}-" in nodeid:
                    counts[name][outcome] += 1
    terminalreporter.write_sep("=", "database backends")
    for name, counter in counts.items():
        summary = ", ".join(f"{n} {o}" for o, n in sorted(counter.items())) or "no tests"
        terminalreporter.write_line(f"{name}: {summary}")
