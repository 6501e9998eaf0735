"""The REST API blueprint (README, "REST API")."""

from __future__ import annotations

from flask import Blueprint

from . import (  # noqa: F401
    annotation_routes,
    dashboards,
    experiments,
    export,
    flags,
    ga4,
    growthbook,
    ingest,
    insights,
    keys,
    meta,
    people,
    privacy,
    reports,
    segments,
    stats,
)
from .routes import router


def create_api_blueprint() -> Blueprint:
    """The blueprint to register under ``{UMETRICS_URL_PREFIX}/api``."""
    return router.blueprint
