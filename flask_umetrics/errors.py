"""Exceptions raised by flask-umetrics, and the JSON error shape of the REST API."""

from __future__ import annotations

from typing import Any


class UMetricsError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(UMetricsError):
    """A setting is missing or invalid; the message names the key. Raised at start-up."""


class ValidationError(UMetricsError, ValueError):
    """A caller passed a bad argument; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class APIError(UMetricsError):
    """An error answered as ``{"error": {"code", "message", "details"}}`` with a 4xx/5xx status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class NotAvailableOnClickHouse(APIError):
    """A report or feature that still reads events from the SQL database, asked while events
    live in ClickHouse: a 501 naming it, never numbers computed from the empty SQL table."""

    def __init__(self, feature: str) -> None:
        super().__init__(
            501,
            "not_available_on_clickhouse",
            f"{feature} is not available on the ClickHouse event store yet "
            "(UMETRICS_EVENT_STORE=clickhouse): its ClickHouse SQL is not written yet, and "
            "the SQL database holds no events to answer from.",
            {"feature": feature, "event_store": "clickhouse"},
        )
        self.feature = feature


class EventStoreUnavailable(UMetricsError):
    """The event store (ClickHouse) could not store or read now; retrying later may succeed.
    REST answers it as 503 ``database_unavailable`` with ``Retry-After``."""
