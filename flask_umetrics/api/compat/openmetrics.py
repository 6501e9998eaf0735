"""open-metrics' ``/v1/...`` API (being built)."""

from __future__ import annotations

from flask import Blueprint


def create_blueprint() -> Blueprint:
    return Blueprint("umetrics_openmetrics", __name__)
