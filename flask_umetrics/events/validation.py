"""Checking one incoming event against the limits, and turning it into a row.

Used by ``track()``, the REST batch endpoint, the compatibility blueprints and imports, so every
path refuses the same things with the same field names.
"""

from __future__ import annotations

import json
import uuid as uuid_module
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import ValidationError
from ..validation import as_utc

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FIELDS = frozenset(
    {"event", "distinct_id", "properties", "timestamp", "uuid", "session_id", "active"}
)
MAX_ID_LENGTH = 200
MAX_UUID_LENGTH = 64


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware (or UTC-naive) datetime."""
    delta = as_utc(moment, "timestamp") - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class Limits:
    """The ingestion limits of one app (from its settings)."""

    max_name_length: int
    max_properties_bytes: int
    max_properties_depth: int
    max_age: timedelta | None
    max_future: timedelta

    @classmethod
    def from_settings(cls, settings: Any, *, any_age: bool = False) -> Limits:
        age_days = settings["UMETRICS_MAX_EVENT_AGE_DAYS"]
        return cls(
            max_name_length=min(settings["UMETRICS_MAX_EVENT_NAME_LENGTH"], 200),
            max_properties_bytes=settings["UMETRICS_MAX_PROPERTIES_BYTES"],
            max_properties_depth=settings["UMETRICS_MAX_PROPERTIES_DEPTH"],
            max_age=None if any_age or age_days == 0 else timedelta(days=age_days),
            max_future=timedelta(seconds=settings["UMETRICS_MAX_EVENT_FUTURE_SECONDS"]),
        )


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and lists nest more than ``limit`` levels (iterative: a hostile payload
    nested thousands of levels deep must not exhaust the stack)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth == limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _has_nul(value: Any) -> bool:
    """Whether a key or string value holds a NUL character (PostgreSQL's JSONB refuses them)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def check_properties(value: Any, limits: Limits, field: str = "properties") -> dict[str, Any]:
    """A JSON object within the size and depth limits (``None`` means empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(field, "must be a JSON object")
    if _deeper_than(value, limits.max_properties_depth):
        raise ValidationError(field, f"nested deeper than {limits.max_properties_depth} levels")
    if _has_nul(value):
        raise ValidationError(field, "keys and values must not contain NUL characters")
    try:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(field, f"must be JSON-serialisable ({exc})") from exc
    if size > limits.max_properties_bytes:
        raise ValidationError(
            field, f"is {size} bytes of JSON; at most {limits.max_properties_bytes} are allowed"
        )
    return value


def _text(raw: Mapping[str, Any], field: str, max_length: int, required: bool) -> str | None:
    value = raw.get(field)
    if value is None:
        if required:
            raise ValidationError(field, "is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        if required:
            raise ValidationError(field, "must not be empty")
        return None
    if len(value) > max_length:
        raise ValidationError(field, f"must be at most {max_length} characters")
    if "\x00" in value:
        raise ValidationError(field, "must not contain NUL characters")
    return value


def _timestamp(value: Any, now: datetime, limits: Limits) -> datetime:
    if value is None:
        return now
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationError("timestamp", "must be an ISO 8601 date-time") from exc
    elif isinstance(value, datetime):
        moment = value
    else:
        raise ValidationError("timestamp", "must be an ISO 8601 date-time string")
    moment = as_utc(moment, "timestamp")
    if moment - now > limits.max_future:
        raise ValidationError("timestamp", "is too far in the future")
    if limits.max_age is not None and now - moment > limits.max_age:
        raise ValidationError("timestamp", f"is older than {limits.max_age.days} days")
    if moment < EPOCH:
        raise ValidationError("timestamp", "is before 1970")
    return moment


def normalize_event(raw: Any, scope_id: str, limits: Limits, now: datetime) -> dict[str, Any]:
    """The ``umetrics_events`` row for one incoming event; ``ValidationError`` names the field.

    An event without ``uuid`` gets a random one, so a retried flush can never store it twice.
    """
    if not isinstance(raw, Mapping):
        raise ValidationError("event", "each event must be a JSON object")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise ValidationError(unknown[0], "is not a known event field")
    name = _text(raw, "event", limits.max_name_length, required=True)
    distinct_id = _text(raw, "distinct_id", MAX_ID_LENGTH, required=True)
    event_uuid = _text(raw, "uuid", MAX_UUID_LENGTH, required=False)
    session_id = _text(raw, "session_id", MAX_ID_LENGTH, required=False)
    active = raw.get("active", True)
    if not isinstance(active, bool):
        raise ValidationError("active", "must be true or false")
    properties = check_properties(raw.get("properties"), limits)
    moment = _timestamp(raw.get("timestamp"), now, limits)
    return {
        "scope_id": scope_id,
        "uuid": event_uuid or str(uuid_module.uuid4()),
        "event": name,
        "distinct_id": distinct_id,
        "ts": to_micros(moment),
        "session_id": session_id,
        "active": active,
        "properties": properties,
    }
