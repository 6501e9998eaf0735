"""The app gunicorn serves in the REST ingestion benchmark: UMetrics alone, on the bench database.

``gunicorn -w 2 -b 127.0.0.1:PORT 'bench.ingest_app:create_app()'``, run from the repository
root. The database URL comes from ``UMETRICS_BENCH_DATABASE_URL`` (default: the
``umetrics_bench`` PostgreSQL database on 127.0.0.1); the schema must already exist
(``bench/analytics.py`` creates it). With ``UMETRICS_BENCH_CLICKHOUSE_URL`` set, events go to
that ClickHouse (``bench/clickhouse.py``: chdb, served by one worker with threads).
"""

from __future__ import annotations

import os

from flask import Flask

from flask_umetrics import UMetrics

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/umetrics_bench"


def create_app() -> Flask:
    """A bare Flask app with the extension: bot filtering on, no scheduler, no authorizer (the
    benchmark authenticates with an ingest key in ``X-UMetrics-Key``)."""
    app = Flask(__name__)
    app.config.update(
        UMETRICS_DATABASE_URL=os.environ.get("UMETRICS_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        UMETRICS_FILTER_BOTS=True,
        UMETRICS_SCHEDULER="off",
    )
    clickhouse_url = os.environ.get("UMETRICS_BENCH_CLICKHOUSE_URL")
    if clickhouse_url:
        app.config.update(UMETRICS_EVENT_STORE="clickhouse", UMETRICS_CLICKHOUSE_URL=clickhouse_url)
    UMetrics(app)
    return app
