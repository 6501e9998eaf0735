"""Configuration warnings logged once per process, when the app serves its first request.

``init_app`` runs for every CLI command too (``flask umetrics gen-cookie-key`` would otherwise warn
that the key it is about to print is missing), so start-up gaps are logged by the first request
instead, each once per process however many apps or requests there are; ``flask umetrics
doctor`` prints them all with their fixes whenever asked.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask

logger = logging.getLogger("flask_umetrics")

_warned: set[str] = set()
_lock = threading.Lock()
#: Gaps logged elsewhere at the moment they matter (a refused keyless request logs the missing
#: authorizer), or only worth a line in ``doctor``.
_NOT_AT_START = frozenset({"authorizer"})


def warn_once(code: str, message: str, *args: Any) -> bool:
    """Log ``message`` as a warning unless ``code`` was logged before in this process."""
    with _lock:
        if code in _warned:
            return False
        _warned.add(code)
    logger.warning("flask-umetrics: " + message, *args)
    return True


def forget_warnings() -> None:
    """Let every warning be logged again (tests)."""
    with _lock:
        _warned.clear()


def install_startup_warnings(app: Flask) -> None:
    """Log the app's configuration problems (see ``config_checks``) at its first request."""
    checked = threading.Event()

    def check_configuration() -> None:
        if checked.is_set():
            return
        checked.set()
        from .config_checks import static_findings

        for finding in static_findings(app):
            if finding.severity == "problem" and finding.code not in _NOT_AT_START:
                warn_once(finding.code, "%s (`flask umetrics doctor` lists every gap.)", finding)

    app.before_request(check_configuration)
