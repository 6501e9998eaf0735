"""One increasing clock per process: the ingestion sequence of events and the version of
mirrored person rows.

ClickHouse has no autoincrement. SQL breaks timestamp ties in funnels by ``events.id``, the
order rows were inserted; here each row gets the next value of a nanosecond clock that never
repeats or goes back within the process, so rows of one process keep their insertion order and
rows of different processes are ordered by when they were written (up to clock skew).

Mirrored person rows (``ReplacingMergeTree(version)``) take their version from the same clock,
stamped inside the SQL transaction that made the change, so the newest change has the highest
version (between hosts: as far as their clocks agree; see docs/clickhouse.md).
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_last = 0


def next_values(count: int) -> range:
    """``count`` consecutive values, all greater than any value handed out before."""
    global _last
    with _lock:
        start = max(_last + 1, time.time_ns())
        _last = start + count - 1
    return range(start, start + count)


def next_value() -> int:
    return next_values(1)[0]
