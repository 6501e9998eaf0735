"""Browser tests: the example app with demo data served on loopback, driven by headless Chromium.

Chromium comes from Debian (``/usr/bin/chromium``; ``.ci/run`` installs it) and is driven by
Playwright for Python; nothing is downloaded. Without Chromium these tests are skipped, unless
``UMETRICS_REQUIRE_BROWSER=1`` (CI) makes that a failure. Each test module gets its own freshly
seeded app, so a test that deletes a person or starts an experiment changes nobody else's data.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest
from flask import Flask
from werkzeug.serving import make_server

from ..demo_env import seeded_demo

CHROMIUM = os.environ.get("UMETRICS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: An ordinary Chrome's user agent: the server drops events from "HeadlessChrome" as a bot's.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
ADMIN = ("admin@example.com", "demo")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
except ImportError:  # pragma: no cover - playwright is a dev dependency
    sync_playwright = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = sync_playwright is None or not os.path.exists(CHROMIUM)
    if not missing:
        return
    if os.environ.get("UMETRICS_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(
            f"UMETRICS_REQUIRE_BROWSER=1 but Chromium ({CHROMIUM}) or playwright is missing"
        )
    skip = pytest.mark.skip(reason=f"needs playwright and Chromium at {CHROMIUM}")
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


@dataclass
class LiveApp:
    """The seeded example app and where it answers."""

    app: Flask
    url: str

    def api(
        self, path: str, *, user: tuple[str, str] = ADMIN, method: str = "GET", body: Any = None
    ) -> Any:
        """Ask the REST API as ``user`` (HTTP Basic, as a script would) and decode the JSON."""
        token = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
        data = json.dumps(body).encode() if body is not None else None
        request = Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        )
        with urlopen(request, timeout=30) as response:
            return json.loads(response.read())


@contextmanager
def serving(app: Flask) -> Iterator[LiveApp]:
    """``app`` served on a free loopback port in a thread, for as long as the block runs."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-app", daemon=True)
    thread.start()
    try:
        yield LiveApp(app, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    app = seeded_demo(tmp_path_factory.mktemp("browser-instance"), days=30, users=60)
    with serving(app) as live:
        yield live


def restarted(live: LiveApp, **config: Any) -> Flask:
    """The seeded example app created again on ``live``'s instance folder (as ``flask run`` after
    ``seed-demo``, so it loads the browser write key seeding wrote), with ``config`` on top."""
    from example_app import create_app

    saved = dict(os.environ)
    try:
        return create_app({"TESTING": True, "INSTANCE_PATH": live.app.instance_path, **config})
    finally:  # create_app copies the demo's cookie key into os.environ: keep other tests' view
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def chromium(browser: Browser) -> Iterator[Browser]:
    """Chromium with an ordinary user agent everywhere (a command-line switch, so beacons sent
    while a page unloads carry it too)."""
    launched = browser.browser_type.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--user-agent={USER_AGENT}"], headless=True
    )
    yield launched
    launched.close()


@pytest.fixture
def ctx(chromium: Browser) -> Iterator[BrowserContext]:
    context = chromium.new_context()
    yield context
    context.close()


def wait_for(page: Page, check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``check`` while Playwright keeps dispatching (route handlers run meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        page.wait_for_timeout(100)


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def login(page: Page, live: LiveApp, email: str = ADMIN[0], password: str = ADMIN[1]) -> None:
    """Log in through the example app's form, as a person would."""
    page.goto(live.url + "/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def number(text: str) -> float:
    """A number as the dashboard prints it (``1,234``, ``12.5%``, ``$1,200.00``)."""
    cleaned = text.strip().replace(",", "").replace("$", "").rstrip("%")
    return float(cleaned)


def click_bar(page: Page, chart: str, index: int, dataset: int = 0) -> None:
    """Click bar ``index`` of dataset ``dataset`` of chart ``#chart-<chart>`` where Chart.js
    drew it (its middle)."""
    canvas = f"#chart-{chart} canvas"
    at = page.evaluate(
        "([selector, dataset, index]) => { const c = document.querySelector(selector);"
        " const bar = window.Chart.getChart(c).getDatasetMeta(dataset).data[index];"
        " return {x: bar.x, y: (bar.y + bar.base) / 2}; }",
        [canvas, dataset, index],
    )
    page.click(canvas, position={"x": at["x"], "y": at["y"]})


def table_rows(page: Page, key: str) -> list[list[str]]:
    """The cells of the dashboard table ``data-testid=table-<key>``, header row excluded."""
    return page.eval_on_selector_all(
        f"[data-testid='table-{key}'] tbody tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent.trim()))",
    )


def screenshot(page: Page, name: str) -> None:
    """A full-page screenshot; with ``UMETRICS_SCREENSHOTS=1`` (``make screenshots``) it
    replaces the README's picture in docs/screenshots/, else it goes to a temporary folder so a
    test run leaves the checkout clean."""
    if os.environ.get("UMETRICS_SCREENSHOTS") == "1":
        folder = SCREENSHOTS
    else:
        folder = Path(tempfile.gettempdir()) / "umetrics-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
