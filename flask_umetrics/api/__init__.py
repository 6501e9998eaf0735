"""The REST API blueprint (DESIGN.md §6)."""

from __future__ import annotations

from flask import Blueprint

from . import ingest, keys, meta, reports, stats  # noqa: F401 - importing registers routes
from .routes import router


def create_api_blueprint() -> Blueprint:
    """The blueprint to register under ``{UMETRICS_URL_PREFIX}/api``."""
    return router.blueprint
