"""Response models shared by several route modules."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Reading(BaseModel):
    metric_key: str
    value: float
    captured_at: datetime
    scope_id: str
    source: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: object | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
