"""Buffering server-side events so tracking never costs a database round trip per event.

Inside a request, events wait in ``flask.g`` and are written in one batch when the request ends.
Outside requests (workers, scripts), a process-wide buffer writes when it holds
``UMETRICS_TRACK_BUFFER_SIZE`` events, after ``UMETRICS_TRACK_FLUSH_SECONDS``, on ``flush()``
and at exit. A forked child (gunicorn workers) starts with an empty buffer: the parent keeps
and flushes its own. Every event carries a uuid from the moment it is tracked, so a flush that
is retried after a failure cannot store anything twice.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

from flask import Flask, g
from sqlalchemy import Engine

from .writer import write_events

if TYPE_CHECKING:
    from ..engines import EventStore

logger = logging.getLogger("flask_umetrics")
_REQUEST_KEY = "_umetrics_pending_events"


class EventBuffer:
    """A thread-safe, fork-safe batch of event rows for one app's engine and event store."""

    def __init__(self, engine: Engine, store: EventStore, size: int, interval: float) -> None:
        self.engine = engine
        self.store = store
        self._size = size
        self._interval = interval
        self._reset()
        reference = weakref.ref(self)

        def after_fork() -> None:
            buffer = reference()
            if buffer is not None:
                buffer._reset()

        def at_exit() -> None:
            buffer = reference()
            if buffer is not None:
                buffer.flush()

        os.register_at_fork(after_in_child=after_fork)
        atexit.register(at_exit)

    def _reset(self) -> None:
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._rows.extend(rows)
            full = len(self._rows) >= self._size
            if not full and self._timer is None:
                self._timer = threading.Timer(self._interval, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if full:
            self.flush()

    def flush(self) -> int:
        """Write everything buffered now; on failure keep it for the next attempt."""
        with self._lock:
            rows, self._rows = self._rows, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if not rows:
            return 0
        try:
            return write_events(self.engine, rows, self.store).stored
        except Exception:  # kept and retried, never lost silently
            logger.exception(
                "flask-umetrics: could not write %d buffered events; will retry", len(rows)
            )
            with self._lock:
                self._rows[:0] = rows
                if self._timer is None:
                    self._timer = threading.Timer(self._interval, self.flush)
                    self._timer.daemon = True
                    self._timer.start()
            return 0


def add_to_request(rows: list[dict[str, Any]]) -> None:
    pending: list[dict[str, Any]] | None = g.get(_REQUEST_KEY)
    if pending is None:
        pending = []
        setattr(g, _REQUEST_KEY, pending)
    pending.extend(rows)


def flush_request(buffer: EventBuffer) -> int:
    """Write this request's events in one batch (handing them to ``buffer`` if that fails)."""
    pending: list[dict[str, Any]] | None = g.pop(_REQUEST_KEY, None)
    if not pending:
        return 0
    try:
        return write_events(buffer.engine, pending, buffer.store).stored
    except Exception:  # the process buffer retries them
        logger.exception(
            "flask-umetrics: could not write %d events of this request; buffering them for retry",
            len(pending),
        )
        buffer.add(pending)
        return 0


def install_request_flush(app: Flask, buffer: EventBuffer) -> None:
    """Flush each request's tracked events when the request ends."""

    def flush_at_teardown(_error: BaseException | None) -> None:
        flush_request(buffer)

    app.teardown_request(flush_at_teardown)
