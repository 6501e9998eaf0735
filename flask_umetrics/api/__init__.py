"""The REST API blueprint (DESIGN.md §6)."""

from __future__ import annotations

from flask import Blueprint

from . import export, ingest, keys, meta, people, privacy, reports, segments, stats  # noqa: F401
from .routes import router


def create_api_blueprint() -> Blueprint:
    """The blueprint to register under ``{UMETRICS_URL_PREFIX}/api``."""
    return router.blueprint
