"""flask-umetrics: first-party, self-hosted product analytics for Flask apps."""

from __future__ import annotations

__version__ = "0.1.0"

from .annotations import (
    Annotation,
    create_annotation,
    delete_annotation,
    list_annotations,
    update_annotation,
)
from .auth import create_api_key, list_api_keys, revoke_api_key
from .errors import APIError, ConfigurationError, UMetricsError, ValidationError
from .events import flush, identify, set_person_properties, track
from .events.privacy import anonymize_person, delete_person, export_person
from .extension import UMetrics
from .flags import hash_v2, weighted_bucket
from .flags.decide import Resolution
from .flags.evaluate import (
    current_anonymous_id,
    get_value,
    get_variant,
    is_enabled,
    resolve_variant,
)
from .flags.results import experiment_results
from .flags.store import (
    create_experiment,
    delete_experiment,
    get_experiment,
    list_experiments,
    pause_experiment,
    set_killed,
    start_experiment,
    stop_experiment,
    update_experiment,
)
from .insights import (
    create_dashboard,
    create_insight,
    delete_dashboard,
    delete_insight,
    export_insights,
    get_dashboard,
    get_insight,
    import_insights,
    insight_result,
    list_dashboards,
    list_insights,
    register_insight_kind,
    update_dashboard,
    update_insight,
)
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
    "Annotation",
    "CollectorResult",
    "ConfigurationError",
    "Resolution",
    "SnapshotResult",
    "StatCollector",
    "StatReading",
    "UMetrics",
    "UMetricsError",
    "ValidationError",
    "__version__",
    "anonymize_person",
    "create_annotation",
    "create_api_key",
    "create_dashboard",
    "create_experiment",
    "create_insight",
    "current_anonymous_id",
    "delete_annotation",
    "delete_dashboard",
    "delete_experiment",
    "delete_insight",
    "delete_person",
    "experiment_results",
    "export_insights",
    "export_person",
    "flush",
    "get_dashboard",
    "get_experiment",
    "get_insight",
    "get_latest_stat",
    "get_stat_series",
    "get_value",
    "get_variant",
    "hash_v2",
    "identify",
    "import_insights",
    "insight_result",
    "is_enabled",
    "list_annotations",
    "list_api_keys",
    "list_dashboards",
    "list_experiments",
    "list_insights",
    "pause_experiment",
    "record_stat",
    "register_insight_kind",
    "register_stat_collector",
    "resolve_variant",
    "revoke_api_key",
    "run_stat_snapshot",
    "set_killed",
    "set_person_properties",
    "start_experiment",
    "stop_experiment",
    "track",
    "update_annotation",
    "update_dashboard",
    "update_experiment",
    "update_insight",
    "weighted_bucket",
]
