"""Response models shared by several route modules."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ScopedModel(BaseModel):
    """Base of every query and body model: unknown fields are refused, ``scope_id`` is allowed.

    The router reads and authorizes ``scope_id`` before validation; it is declared here so the
    OpenAPI document shows it and ``extra="forbid"`` does not refuse it.
    """

    model_config = ConfigDict(extra="forbid")
    scope_id: str | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: object | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
