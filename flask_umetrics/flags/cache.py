"""In-process cache of flag definitions, bounded, and invalidated on change in every worker process.

A change made in this process drops the scope's entry at once. Other processes see the scope's
generation counter move: each checks it at most every ``UMETRICS_FLAGS_REFRESH_SECONDS`` (one
small primary-key read), and reloads the definitions only when it moved.

Anyone can name a scope (``GET /api/flags?scope_id=...`` is public), so the cache is bounded: it
holds the ``UMETRICS_FLAG_CACHE_SCOPES`` most recently used scopes that have flags, and apart
from them at most as many scopes that have none (an entry that only says "no flags, checked
then"). Made-up scope ids therefore cost a bounded amount of memory, one primary-key read each,
and can only push other flagless scopes out, never the definitions of a scope that has flags.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import Engine, select

from ..db.tables import flag_generations
from .model import Experiment

#: What a scope without flags has (shared, read-only).
NO_DEFINITIONS: Mapping[str, Experiment] = MappingProxyType({})


@dataclass(slots=True)
class _Entry:
    generation: int
    definitions: Mapping[str, Experiment]
    checked_at: float


class FlagCache:
    """Definitions by scope; thread-safe, bounded, never older than the refresh interval."""

    def __init__(self, engine: Engine, refresh_seconds: float, max_scopes: int = 1000) -> None:
        if max_scopes < 1:
            raise ValueError("max_scopes must be at least 1")
        self._engine = engine
        self._refresh_seconds = refresh_seconds
        #: How many scopes of each kind (with flags, without) are held at most.
        self.max_scopes = max_scopes
        self._with_flags: OrderedDict[str, _Entry] = OrderedDict()
        self._without_flags: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        #: The scope asked for last and its entry: asked again (every flag of a request, every
        #: evaluation in a loop) it is answered without the lock and the LRU bookkeeping.
        #: Replaced whole (one atomic assignment), cleared when an entry is dropped.
        self._last: tuple[str, _Entry] | None = None
        #: How many times definitions were (re)loaded from the database (for tests and stats).
        self.loads = 0

    def __len__(self) -> int:
        """How many scopes are held now (both kinds)."""
        with self._lock:
            return len(self._with_flags) + len(self._without_flags)

    def scopes_with_flags(self) -> list[str]:
        """The scopes whose definitions are held, least recently used first."""
        with self._lock:
            return list(self._with_flags)

    def invalidate(self, scope_id: str) -> None:
        with self._lock:
            self._last = None
            self._with_flags.pop(scope_id, None)
            self._without_flags.pop(scope_id, None)

    def _recent(self, scope_id: str) -> _Entry | None:
        """The held entry, marked as just used (call with the lock held)."""
        for entries in (self._with_flags, self._without_flags):
            entry = entries.get(scope_id)
            if entry is not None:
                entries.move_to_end(scope_id)
                return entry
        return None

    def _store(self, scope_id: str, entry: _Entry) -> None:
        with self._lock:
            self._last = None
            self._with_flags.pop(scope_id, None)
            self._without_flags.pop(scope_id, None)
            entries = self._with_flags if entry.definitions else self._without_flags
            entries[scope_id] = entry
            while len(entries) > self.max_scopes:
                entries.popitem(last=False)

    def definitions(self, scope_id: str) -> Mapping[str, Experiment]:
        """The scope's definitions by key (shared and read-only)."""
        now = time.monotonic()
        last = self._last
        if (
            last is not None
            and last[0] == scope_id
            and now - last[1].checked_at < self._refresh_seconds
        ):
            return last[1].definitions  # already the most recently used: nothing to move
        with self._lock:
            entry = self._recent(scope_id)
            if entry is not None:
                self._last = (scope_id, entry)  # under the lock: never after an invalidate
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
            # Every definition is written with a generation bump, so a scope that never had
            # one has no definitions: one primary-key read answers a made-up scope id.
            definitions: Mapping[str, Experiment] = NO_DEFINITIONS
            if generation:
                definitions = load_experiments(connection, scope_id) or NO_DEFINITIONS
                with self._lock:
                    self.loads += 1
        self._store(scope_id, _Entry(generation, definitions, now))
        return definitions

    def get(self, scope_id: str, key: str) -> Experiment | None:
        return self.definitions(scope_id).get(key)
