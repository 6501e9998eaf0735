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


class PermissionRequired(APIError):
    """The caller may do what the route does, but not this part of it (403 naming the field).

    The code is ``<permission>_permission_required``, e.g. ``identify_permission_required`` when
    a public write key asks to merge identified persons; nothing of the request is written.
    """

    def __init__(self, permission: str, field: str, message: str) -> None:
        text = f"{message}: that needs the {permission!r} permission, which this caller lacks"
        super().__init__(
            403,
            f"{permission}_permission_required",
            f"{field}: {text}.",
            [{"field": field, "message": text, "permission": permission}],
        )
        self.permission = permission
        self.field = field
        self.reason = message

    def for_field(self, field: str) -> PermissionRequired:
        """The same refusal naming ``field`` (a compatibility API's name for it)."""
        return PermissionRequired(self.permission, field, self.reason)


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
