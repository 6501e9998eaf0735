"""The app of the "scheduler leader killed mid-job" fault test: one slow collector.

The collector drops a ``started-<pid>`` file in ``FAULT_MARKER_DIR`` and then takes
``FAULT_JOB_SECONDS``, so the test can kill the process while the job runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask

from flask_umetrics import UMetrics


def slow_collector(scope_id: str) -> float:
    Path(os.environ["FAULT_MARKER_DIR"], f"started-{os.getpid()}").touch()
    time.sleep(float(os.environ["FAULT_JOB_SECONDS"]))
    return 42


def create_app() -> Flask:
    app = Flask(__name__, instance_path=os.environ["FAULT_MARKER_DIR"])
    extension = UMetrics()
    extension.register_stat_collector("slow", slow_collector, format="integer")
    app.config["UMETRICS_BUILTIN_COLLECTORS"] = False
    extension.init_app(app)
    return app
