"""Public routes: health and the OpenAPI document; JSON answers for unknown API paths."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from pydantic import BaseModel
from sqlalchemy import text
from werkzeug.exceptions import MethodNotAllowed, NotFound

from ..db import migrate
from ..errors import APIError
from ..state import current_state
from .openapi import build_openapi
from .router import APICall
from .routes import router

TAG = "meta"


class Health(BaseModel):
    status: str
    database: str
    schema_revision: str | None
    schema_head: str | None


@router.route(
    "/health",
    summary="Database reachable and schema up to date",
    permission=None,
    tag=TAG,
    response=Health,
)
def health(call: APICall) -> Health:
    try:
        engine = current_state().engine
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision, database = migrate.current_revision(engine), "ok"
    except Exception:  # noqa: BLE001 - health reports, it does not raise
        revision, database = None, "unreachable"
    head = migrate.head_revision()
    status = "ok" if database == "ok" and revision == head else "degraded"
    return Health(status=status, database=database, schema_revision=revision, schema_head=head)


@router.route("/openapi.json", summary="This document", permission=None, tag=TAG)
def openapi_document(call: APICall) -> dict[str, Any]:
    prefix = current_state().settings["UMETRICS_URL_PREFIX"] + "/api"
    return build_openapi(router.specs, prefix)


_ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@router.blueprint.route("/<anypath:unknown>", methods=list(_ALL_METHODS))
def unknown_route(unknown: str) -> Any:
    """A JSON 404 (or 405 with ``Allow``) instead of the host app's HTML page."""
    adapter = current_app.url_map.bind("", url_scheme=request.scheme)
    allowed = []
    for method in _ALL_METHODS:
        try:
            endpoint, _ = adapter.match(request.path, method=method)
        except (NotFound, MethodNotAllowed):
            continue
        if endpoint != request.endpoint:
            allowed.append(method)
    if allowed:
        raise APIError(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed here; use {', '.join(allowed)}.",
            headers={"Allow": ", ".join(allowed)},
        )
    raise APIError(404, "not_found", f"No API route at {request.path}.")


unknown_route.umetrics_permission = None  # type: ignore[attr-defined]
