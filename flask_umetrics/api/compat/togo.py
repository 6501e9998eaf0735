"""togo analytics' REST API shapes under ``/api/analytics/...`` (being built)."""

from __future__ import annotations

from flask import Blueprint


def create_blueprint() -> Blueprint:
    return Blueprint("umetrics_togo", __name__)
