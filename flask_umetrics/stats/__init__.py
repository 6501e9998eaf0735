"""The stat store and its collectors."""

from .collectors import CollectorRegistry, StatCollector
from .snapshot import CollectorResult, SnapshotResult, run_stat_snapshot
from .store import StatReading, get_latest_stat, get_latest_stats, get_stat_series, record_stat

__all__ = [
    "CollectorRegistry",
    "CollectorResult",
    "SnapshotResult",
    "StatCollector",
    "StatReading",
    "get_latest_stat",
    "get_latest_stats",
    "get_stat_series",
    "record_stat",
    "run_stat_snapshot",
]
