"""The README quick start, pasted into an empty folder and installed in a fresh virtualenv.

The install line is run as written, with ``flask-umetrics`` pointing at a copy of this checkout
(pip builds it with the packages from the index, like a reader's ``pip install``); then the
quick start's blocks run in order, the app is served with ``flask run``, and a browser-like
client checks what the section promises: the dashboard answers the admin, a REST call with the
printed key works, a tracked event is stored and the flag records an exposure.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from .docs_blocks import ROOT, Session, clean_environment, runnable_blocks

#: What a reader's copy needs; build artefacts, caches and the VCS are left behind.
_NOT_COPIED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "instance",
    ".*_cache",
    ".hypothesis",
    "node_modules",
    "screenshots",
)
_REQUIREMENT = re.compile(r"flask-umetrics(\[[a-z0-9,]*\])?")
INSTALL_TIMEOUT = 600


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Browser:
    """urllib with a cookie jar; answers (status, body) and never follows redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )

    def request(
        self, path: str, form: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=30) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


def _wait_until_serving(base: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"flask run exited {server.returncode}")
        try:
            urllib.request.urlopen(base + "/", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("flask run did not answer within 60 s")


@pytest.mark.slow
def test_the_quick_start_works_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    started = time.monotonic()
    blocks = runnable_blocks(ROOT / "README.md")
    install = next(block for block in blocks if block.how == "install")
    source = tmp_path / "flask-umetrics"
    shutil.copytree(ROOT, source, ignore=_NOT_COPIED)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    folder = tmp_path / "app"
    folder.mkdir()
    session = Session(folder, clean_environment(venv / "bin", pythonpath=None), venv / "bin/python")

    # 1. The install line as written, with the checkout in place of the published package.
    command = _REQUIREMENT.sub(lambda match: f"{source}{match.group(1) or ''}", install.code)
    assert str(source) in command, install.code
    installed = subprocess.run(
        ["bash", "-eu", "-o", "pipefail", "-c", command],
        cwd=folder,
        env=session.env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    install_seconds = time.monotonic() - started
    freeze = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "freeze"],
        capture_output=True,
        text=True,
        env=session.env,
        check=True,
    ).stdout.lower()
    # Only the library's runtime needs and the extras asked for: no development toolchain.
    for tool in ("pytest", "playwright", "mypy", "ruff", "duckdb", "google-analytics-data"):
        assert f"\n{tool}==" not in "\n" + freeze, tool
    assert "psycopg" in freeze and "flask-sqlalchemy" in freeze

    # 2. The quick start's blocks, in order.
    outputs = [session.run(block) for block in blocks if block.how != "install"]
    blocks_seconds = time.monotonic() - started - install_seconds
    key = re.search(r"^(umk_\S+)$", "\n".join(o.stdout for o in outputs), re.MULTILINE)
    assert key is not None, [o.stdout for o in outputs]

    # 3. Serve it and use it.
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server_log = (tmp_path / "server.log").open("w", encoding="utf-8")
    server = subprocess.Popen(
        [str(venv / "bin/flask"), "--app", "app", "run", "--port", str(port)],
        cwd=folder,
        env=session.env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_until_serving(base, server)
        visitor = Browser(base)
        assert visitor.request("/umetrics/admin/")[0] == 401
        assert visitor.request("/")[0] == 200  # anonymous, no consent: no exposure
        admin = Browser(base)
        status, _ = admin.request("/login", {"email": "admin@example.com", "password": "change-me"})
        assert status == 302
        status, home = admin.request("/")
        assert status == 200 and 'href="/umetrics/admin/"' in home
        status, dashboard = admin.request("/umetrics/admin/")
        assert status == 200 and "Paying customers" in dashboard
        status, body = visitor.request(
            "/umetrics/api/stats", headers={"Authorization": f"Bearer {key.group(1)}"}
        )
        assert status == 200, body
        assert "paying_customers" in json.dumps(json.loads(body))
        assert visitor.request("/umetrics/api/stats")[0] == 401
        reader = Browser(base)
        status, _ = reader.request("/signup", {"email": "ada@example.com", "password": "pw"})
        assert status == 302
        assert reader.request("/")[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
        server_log.close()

    # 4. What the database holds.
    database = sqlite3.connect(folder / "instance" / "app.db")
    try:
        events = database.execute(
            "SELECT event, count(*) FROM umetrics_events GROUP BY event ORDER BY event"
        ).fetchall()
        exposures = database.execute(
            "SELECT count(*), count(DISTINCT subject_id) FROM umetrics_exposures "
            "WHERE scope_id = 'default' AND experiment_key = 'new-editor'"
        ).fetchone()
    finally:
        database.close()
    assert events == [("logged_in", 1), ("signed_up", 1)]
    assert exposures == (2, 2)  # the admin and the new user; not the anonymous visitor
    elapsed = time.monotonic() - started
    print(
        f"\nquick start in a fresh virtualenv: {elapsed:.0f} s "
        f"(venv and install {install_seconds:.0f} s, blocks {blocks_seconds:.0f} s)"
    )
    assert elapsed < 300
