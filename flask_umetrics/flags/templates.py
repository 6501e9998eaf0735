"""Jinja helpers so templates can branch on flags: ``{% if umetrics_enabled("new-nav") %}``."""

from __future__ import annotations

from flask import Flask

from .evaluate import get_variant, is_enabled


def _enabled(key: str, scope_id: str | None = None) -> bool:
    return is_enabled(key, scope_id=scope_id)


def install_template_helpers(app: Flask) -> None:
    """``umetrics_enabled(key)`` and ``umetrics_variant(key)`` for the current subject."""
    app.jinja_env.globals.setdefault("umetrics_enabled", _enabled)
    app.jinja_env.globals.setdefault("umetrics_variant", get_variant)
