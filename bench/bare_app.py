"""The baseline app of the memory row: a trivial Flask app, no extension, no database.

``gunicorn -w 2 'bench.bare_app:create_app()'``: what a gunicorn worker costs before our
extension, SQLAlchemy and the database driver are loaded (``bench/memory.py``).
"""

from __future__ import annotations

from flask import Flask


def create_app() -> Flask:
    """One route answering ``ok``."""
    app = Flask(__name__)

    @app.get("/")
    def index() -> str:
        return "ok"

    return app
