"""flask-umetrics: first-party, self-hosted product analytics for Flask apps."""

from __future__ import annotations

__version__ = "0.1.0"

from .auth import create_api_key, list_api_keys, revoke_api_key
from .errors import APIError, ConfigurationError, UMetricsError, ValidationError
from .events import flush, identify, set_person_properties, track
from .events.privacy import anonymize_person, delete_person, export_person
from .extension import UMetrics
from .flags import hash_v2, weighted_bucket
from .state import current_state
from .stats import (
    CollectorResult,
    SnapshotResult,
    StatCollector,
    StatReading,
    get_latest_stat,
    get_stat_series,
    record_stat,
    run_stat_snapshot,
)
from .stats.collectors import CollectFunction


def register_stat_collector(
    key: str, collect: CollectFunction, *, label: str | None = None, format: str = "number"
) -> StatCollector:
    """Register a collector for the current app only (inside an app context)."""
    return current_state().collectors.register(key, collect, label=label, format=format)


__all__ = [
    "APIError",
    "CollectorResult",
    "ConfigurationError",
    "SnapshotResult",
    "StatCollector",
    "StatReading",
    "UMetrics",
    "UMetricsError",
    "ValidationError",
    "__version__",
    "anonymize_person",
    "create_api_key",
    "delete_person",
    "export_person",
    "flush",
    "get_latest_stat",
    "get_stat_series",
    "hash_v2",
    "identify",
    "list_api_keys",
    "record_stat",
    "register_stat_collector",
    "revoke_api_key",
    "run_stat_snapshot",
    "set_person_properties",
    "track",
    "weighted_bucket",
]
