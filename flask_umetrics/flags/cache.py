"""In-process cache of flag definitions, invalidated on change in every worker process.

A change made in this process drops the scope's entry at once. Other processes see the scope's
generation counter move: each checks it at most every ``UMETRICS_FLAGS_REFRESH_SECONDS`` (one
small primary-key read), and reloads the definitions only when it moved.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, select

from ..db.tables import flag_generations
from .model import Experiment


@dataclass
class _Entry:
    generation: int
    definitions: dict[str, Experiment]
    checked_at: float


class FlagCache:
    """Definitions by scope; thread-safe, and never serves data older than the refresh interval."""

    def __init__(self, engine: Engine, refresh_seconds: float) -> None:
        self._engine = engine
        self._refresh_seconds = refresh_seconds
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        #: How many times definitions were (re)loaded from the database (for tests and stats).
        self.loads = 0

    def invalidate(self, scope_id: str) -> None:
        with self._lock:
            self._entries.pop(scope_id, None)

    def definitions(self, scope_id: str) -> dict[str, Experiment]:
        """The scope's definitions by key (shared: do not mutate)."""
        now = time.monotonic()
        entry = self._entries.get(scope_id)
        if entry is not None and now - entry.checked_at < self._refresh_seconds:
            return entry.definitions
        from .store import load_experiments

        with self._engine.connect() as connection:
            generation = connection.execute(
                select(flag_generations.c.generation).where(flag_generations.c.scope_id == scope_id)
            ).scalar()
            generation = int(generation or 0)
            if entry is not None and entry.generation == generation:
                entry.checked_at = now
                return entry.definitions
            definitions = load_experiments(connection, scope_id)
        with self._lock:
            self.loads += 1
            self._entries[scope_id] = _Entry(generation, definitions, now)
        return definitions

    def get(self, scope_id: str, key: str) -> Experiment | None:
        return self.definitions(scope_id).get(key)
