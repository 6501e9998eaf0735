"""ClickHouse settings: URL parsing, start-up errors, passwords never shown, nothing imported
unless configured, and chdb refused in a forked process instead of hanging."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import Flask

from flask_umetrics import UMetrics
from flask_umetrics.engines.clickhouse.client import (
    ClickHouseURL,
    get_client,
    parse_clickhouse_url,
)
from flask_umetrics.errors import ConfigurationError

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"clickhouse://analyst:{SECRET}@ch.internal:8123/analytics",
            ("http", "ch.internal", 8123, "analyst", "analytics", None),
        ),
        (
            f"https://default:{SECRET}@abc.eu-west-1.aws.clickhouse.cloud/umetrics",
            ("https", "abc.eu-west-1.aws.clickhouse.cloud", 8443, "default", "umetrics", None),
        ),
        ("http://localhost", ("http", "localhost", 8123, None, "default", None)),
        (
            "chdb:///var/lib/umetrics/ch",
            ("chdb", None, None, None, "default", "/var/lib/umetrics/ch"),
        ),
    ],
    ids=["server", "cloud", "http-defaults", "chdb"],
)
def test_urls_are_parsed(url: str, expected: tuple[object, ...]) -> None:
    parsed = parse_clickhouse_url(url)
    assert (
        parsed.interface,
        parsed.host,
        parsed.port,
        parsed.username,
        parsed.database,
        parsed.path,
    ) == expected
    assert SECRET not in repr(parsed) and SECRET not in str(parsed)


def test_the_password_reaches_the_client_and_nothing_else() -> None:
    parsed = parse_clickhouse_url(f"clickhouse://analyst:{SECRET}@h:9000/db")
    assert parsed.client_arguments()["password"] == SECRET
    assert parsed.redacted() == "clickhouse://analyst:***@h:9000/db"
    from flask_umetrics.engines.clickhouse.store import ClickHouseEventStore

    assert SECRET not in repr(ClickHouseEventStore(parsed))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://u:s3cr3t-Pa55@h/db", "the scheme must be"),
        ("chdb://relative/dir", "absolute data directory"),
        ("chdb:///", "absolute data directory"),
        ("clickhouse://u:s3cr3t-Pa55@h:notaport/db", "not a URL"),
        ("clickhouse://u:s3cr3t-Pa55@/db", "no host"),
        ("clickhouse://u:s3cr3t-Pa55@h/db/extra", "one database name"),
        ("clickhouse://u:s3cr3t-Pa55@h/db?secure=1", "no query string"),
    ],
    ids=["scheme", "chdb-relative", "chdb-root", "port", "host", "path", "query"],
)
def test_bad_urls_stop_start_up_without_showing_the_password(
    url: str, message: str, tmp_path: Path
) -> None:
    app = Flask("bad", instance_path=str(tmp_path))
    app.config.update(UMETRICS_EVENT_STORE="clickhouse", UMETRICS_CLICKHOUSE_URL=url)
    with pytest.raises(ConfigurationError, match=message) as caught:
        UMetrics(app)
    assert SECRET not in str(caught.value)
    assert "UMETRICS_CLICKHOUSE_URL" in str(caught.value)


def test_the_clickhouse_store_needs_a_url_and_chdb_has_no_cluster(tmp_path: Path) -> None:
    app = Flask("no_url", instance_path=str(tmp_path))
    app.config.update(UMETRICS_EVENT_STORE="clickhouse")
    with pytest.raises(ConfigurationError, match="needs UMETRICS_CLICKHOUSE_URL"):
        UMetrics(app)
    app = Flask("chdb_cluster", instance_path=str(tmp_path))
    app.config.update(
        UMETRICS_EVENT_STORE="clickhouse",
        UMETRICS_CLICKHOUSE_URL="chdb:///tmp/x",
        UMETRICS_CLICKHOUSE_CLUSTER="c1",
    )
    with pytest.raises(ConfigurationError, match="the embedded engine has no cluster"):
        UMetrics(app)


def test_an_unknown_event_store_is_refused(tmp_path: Path) -> None:
    app = Flask("store", instance_path=str(tmp_path))
    app.config.update(UMETRICS_EVENT_STORE="duckdb")
    with pytest.raises(ConfigurationError, match="UMETRICS_EVENT_STORE"):
        UMetrics(app)


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_nothing_of_clickhouse_is_imported_unless_configured(tmp_path: Path) -> None:
    """A fresh interpreter: the SQL store loads neither driver; the ClickHouse store loads them
    only when its client is first used (never in init_app without auto-migrate)."""
    code = f"""
import sys
from flask import Flask
import flask_umetrics
from flask_umetrics import UMetrics
app = Flask("a", instance_path={str(tmp_path)!r})
app.config["UMETRICS_DATABASE_URL"] = "sqlite:///{tmp_path}/a.db"
UMetrics(app)
print("sql", "clickhouse_connect" in sys.modules, "chdb" in sys.modules)
app = Flask("b", instance_path={str(tmp_path)!r})
app.config.update(UMETRICS_DATABASE_URL="sqlite:///{tmp_path}/b.db",
                  UMETRICS_EVENT_STORE="clickhouse",
                  UMETRICS_CLICKHOUSE_URL="chdb://{tmp_path}/ch")
UMetrics(app)
print("clickhouse", "clickhouse_connect" in sys.modules, "chdb" in sys.modules)
"""
    assert _python(code).splitlines() == ["sql False False", "clickhouse False False"]


def test_flask_umetrics_config_hides_the_password(tmp_path: Path) -> None:
    app = Flask("cfg", instance_path=str(tmp_path))
    app.config.update(
        UMETRICS_DATABASE_URL=f"sqlite:///{tmp_path}/c.db",
        UMETRICS_CLICKHOUSE_URL=f"clickhouse://analyst:{SECRET}@h:8123/db",
    )
    UMetrics(app)
    output = app.test_cli_runner().invoke(args=["umetrics", "config"]).output
    assert "UMETRICS_CLICKHOUSE_URL = 'clickhouse://analyst:***@h:8123/db'" in output
    assert SECRET not in output
    app.extensions["umetrics"].engine.dispose()


def test_an_unreachable_server_is_named_without_its_password() -> None:
    pytest.importorskip("clickhouse_connect")
    parsed = parse_clickhouse_url(f"clickhouse://analyst:{SECRET}@127.0.0.1:9/db")
    with pytest.raises(ConfigurationError) as caught:
        get_client(parsed)
    message = str(caught.value)
    assert message.startswith(
        "cannot connect to ClickHouse at clickhouse://analyst:***@127.0.0.1:9/db"
    )
    assert SECRET not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_chdb_in_a_forked_process_is_refused_not_hung(clickhouse_url: str) -> None:
    """What gunicorn --preload does: the parent loaded chdb, a worker forked from it uses it."""
    url: ClickHouseURL = parse_clickhouse_url(clickhouse_url)
    if not url.embedded:
        pytest.skip("the fork guard concerns the embedded engine")
    get_client(url).query("SELECT 1")  # chdb is loaded in this process
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: must answer at once, never touch chdb
        try:
            get_client(url)
            os.write(write, b"no error")
        except ConfigurationError as exc:
            os.write(write, str(exc).encode())
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    message = os.read(read, 4096).decode()
    os.close(read)
    assert "was loaded in process" in message, message
    assert "gunicorn --preload" in message
    assert "gunicorn -w 1 --threads N" in message
    assert get_client(url).query("SELECT 2").result_rows == [(2,)]  # the parent is unaffected
