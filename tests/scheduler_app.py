"""The app the multi-process scheduler test runs; its settings come from the environment."""

from __future__ import annotations

import os

from flask import Flask

from flask_umetrics import UMetrics


def always_fails(scope_id: str) -> float:
    raise ConnectionError("billing API unreachable")


def create_app() -> Flask:
    app = Flask(__name__, instance_path=os.environ["SCHEDULER_TEST_INSTANCE"])
    extension = UMetrics()
    extension.register_stat_collector("signups", lambda scope_id: 7, format="integer")
    extension.register_stat_collector("billing", always_fails)
    app.config["UMETRICS_BUILTIN_COLLECTORS"] = False
    extension.init_app(app)
    return app
