"""Serves the browser client ``umetrics.js`` at ``{prefix}/static/umetrics.js`` (public)."""

from __future__ import annotations

from flask import Blueprint


def create_client_blueprint() -> Blueprint:
    """A blueprint with only a static folder; register it at ``UMETRICS_URL_PREFIX``."""
    return Blueprint(
        "umetrics_client",
        __name__,
        static_folder="static/client",
        static_url_path="/static",
    )
