"""Keep open-metrics' ``?key=`` out of werkzeug's request log.

open-metrics' clients cannot send headers, so its key may travel as ``?key=`` (``auth.py``), and
werkzeug's development server logs every request line with its query string. The key is public
by design, but a log is no place for credentials: this filter rewrites ``key=<value>`` in the
``werkzeug`` logger's records to ``key=REDACTED``. Other servers' access logs (gunicorn, a
reverse proxy) are the host's to configure (docs/compat-and-query.md).
"""

from __future__ import annotations

import logging
import re

#: ``key=`` as a query parameter: after ``?`` or ``&``, up to the next ``&``, space or quote.
_URL_KEY = re.compile(r"(?<=[?&])key=[^&\s\"']*")
REDACTED = "key=REDACTED"


def redact(text: str) -> str:
    return _URL_KEY.sub(REDACTED, text)


class RedactUrlKeys(logging.Filter):
    """Rewrite ``?key=`` values in a record's formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def install(logger_name: str = "werkzeug") -> None:
    """Add the filter to ``logger_name`` once per process."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactUrlKeys) for f in logger.filters):
        logger.addFilter(RedactUrlKeys())
