"""Validation of identifiers shared by the Python API, REST and CLI."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any

from .config import SCOPE_ID_PATTERN
from .errors import ValidationError

METRIC_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def validate_scope_id(scope_id: Any) -> str:
    if not isinstance(scope_id, str) or not SCOPE_ID_PATTERN.match(scope_id):
        raise ValidationError(
            "scope_id", "must be 1-64 characters of letters, digits, '_', '.', ':' or '-'"
        )
    return scope_id


def validate_metric_key(metric_key: Any, field: str = "metric_key") -> str:
    if not isinstance(metric_key, str) or not METRIC_KEY_PATTERN.match(metric_key):
        raise ValidationError(
            field, "must be 1-128 characters of letters, digits, '_', '.', ':' or '-'"
        )
    return metric_key


def validate_number(value: Any, field: str = "value") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, f"must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(field, "must be a finite number")
    return number


def as_utc(value: datetime, field: str) -> datetime:
    """A datetime in UTC; naive values are taken to be UTC."""
    if not isinstance(value, datetime):
        raise ValidationError(field, f"must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00+14:00 is before year 1 in UTC
        raise ValidationError(field, "is out of range") from exc
