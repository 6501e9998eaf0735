"""The ClickHouse event engine (``UMETRICS_EVENT_STORE=clickhouse``).

``client.py`` connects (a server over HTTP(S), or chdb in-process), ``schema.py`` owns the DDL
and its migrations, ``store.py`` writes events, ``mirror.py`` copies persons and the distinct-id
map from SQL, ``sequence.py`` orders rows. Importing this package imports no driver: the
driver is loaded on first use. Reports run here through ``expressions.py`` and one module per
report (funnels and the ad-hoc query answer 501 so far); see
docs/clickhouse.md.
"""

from __future__ import annotations

from typing import Any

from ...config import Settings
from ...errors import ConfigurationError
from . import schema
from .client import parse_clickhouse_url
from .store import ClickHouseEventStore


def store_from_settings(settings: Settings) -> ClickHouseEventStore:
    """The store of a ``clickhouse`` app; a ``ConfigurationError`` for a bad combination."""
    raw = settings["UMETRICS_CLICKHOUSE_URL"]
    if not raw:
        raise ConfigurationError(
            "UMETRICS_EVENT_STORE=clickhouse needs UMETRICS_CLICKHOUSE_URL "
            "(clickhouse://user:password@host:8123/database, https://..., or chdb:///path)"
        )
    url = parse_clickhouse_url(raw)
    cluster = settings["UMETRICS_CLICKHOUSE_CLUSTER"]
    if cluster and url.embedded:
        raise ConfigurationError(
            "UMETRICS_CLICKHOUSE_CLUSTER is set but UMETRICS_CLICKHOUSE_URL is chdb://: the "
            "embedded engine has no cluster"
        )
    return ClickHouseEventStore(url, cluster)


def upgrade_schema(store: Any) -> tuple[int, int]:
    """Bring the ClickHouse schema of ``store`` (a ``ClickHouseEventStore``) to ``schema.HEAD``;
    ``(before, after)``."""
    if not isinstance(store, ClickHouseEventStore):
        raise TypeError(f"not a ClickHouse event store: {store!r}")
    return schema.upgrade(store.client, store.cluster)
