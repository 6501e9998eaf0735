"""Server-side track(): no round trip per event in a request, buffering, fork safety, retries."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from flask_umetrics import flush, track
from flask_umetrics.db.tables import events
from flask_umetrics.events import buffer as buffer_module
from flask_umetrics.state import current_state

from .conftest import AppFactory


def stored(app: Flask) -> int:
    with app.app_context(), current_state().engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(events)).scalar_one())


def test_events_tracked_in_a_request_are_written_once_at_its_end(make_app: AppFactory) -> None:
    app = make_app()
    statements: list[str] = []

    @app.route("/work")
    def work() -> str:
        engine = current_state().engine
        sa_event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        for i in range(50):
            track("job.step", distinct_id="worker", properties={"i": i})
        assert statements == []  # nothing written while the request runs
        return "ok"

    assert app.test_client().get("/work").status_code == 200
    assert stored(app) == 50
    inserts = [
        s for s in statements if s.lstrip().upper().startswith("INSERT INTO UMETRICS_EVENTS")
    ]
    assert len(statements) <= 6 and len(inserts) == 1


def test_outside_requests_events_wait_for_the_batch_size_or_flush(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_TRACK_BUFFER_SIZE=10, UMETRICS_TRACK_FLUSH_SECONDS=60)
    with app.app_context():
        for _ in range(9):
            track("e", distinct_id="d")
        assert stored(app) == 0
        track("e", distinct_id="d")  # the tenth fills the batch
        assert stored(app) == 10
        track("e", distinct_id="d")
        assert stored(app) == 10
        assert flush() == 1
        assert stored(app) == 11


def test_the_flush_timer_writes_a_partial_batch(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_TRACK_BUFFER_SIZE=100, UMETRICS_TRACK_FLUSH_SECONDS=1)
    with app.app_context():
        track("e", distinct_id="d")
    deadline = time.monotonic() + 10
    while stored(app) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored(app) == 1


def test_sync_mode_writes_at_once(make_app: AppFactory) -> None:
    app = make_app(UMETRICS_TRACK_SYNC=True)
    with app.app_context():
        uuid = track("e", distinct_id="d", properties={"a": 1})
        assert stored(app) == 1
        with current_state().engine.connect() as connection:
            assert connection.execute(select(events.c.uuid)).scalar_one() == uuid


def test_a_forked_child_starts_with_an_empty_buffer(make_app: AppFactory, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("one backend is enough: the buffer does not depend on it")
    app = make_app(UMETRICS_TRACK_BUFFER_SIZE=100, UMETRICS_TRACK_FLUSH_SECONDS=60)
    with app.app_context():
        for _ in range(3):
            track("e", distinct_id="d")
        buffer = current_state().event_buffer
        assert len(buffer) == 3
        pid = os.fork()
        if pid == 0:  # the child: must not own (and later flush) the parent's events
            os._exit(0 if len(buffer) == 0 else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert len(buffer) == 3
        assert flush() == 3
    assert stored(app) == 3


def test_a_failed_flush_keeps_the_events_for_the_next_one(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(UMETRICS_TRACK_BUFFER_SIZE=100, UMETRICS_TRACK_FLUSH_SECONDS=60)
    real = buffer_module.write_events
    failures = iter([True])

    def flaky(engine: Any, rows: Any, store: Any = None) -> Any:
        if next(failures, False):
            raise ConnectionError("database restarting")
        return real(engine, rows, store)

    monkeypatch.setattr(buffer_module, "write_events", flaky)
    with app.app_context():
        track("e", distinct_id="d")
        track("e", distinct_id="d")
        assert flush() == 0  # failed, kept
        assert flush() == 2
        assert flush() == 0
    assert stored(app) == 2
