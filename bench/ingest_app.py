"""The app gunicorn serves in the REST ingestion benchmark: UMetrics alone, on the bench database.

``gunicorn -w 2 -b 127.0.0.1:PORT 'bench.ingest_app:create_app()'``, run from the repository
root. The database URL comes from ``UMETRICS_BENCH_DATABASE_URL`` (default: the
``umetrics_bench`` PostgreSQL database on 127.0.0.1); the schema must already exist
(``bench/analytics.py`` creates it). With ``UMETRICS_BENCH_CLICKHOUSE_URL`` set, events go to
that ClickHouse (``bench/clickhouse.py``: chdb, served by one worker with threads), opened
before the worker serves.
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
    if clickhouse_url:
        warm_clickhouse(app)
    return app


def warm_clickhouse_driver() -> None:
    """Load what clickhouse-connect imports on its first insert (pandas and numpy, when they are
    installed: it checks whether the data is a DataFrame). The REST worker and the raw-insert
    baseline both call this before their clocks start, so neither times a one-off import."""
    from clickhouse_connect.driver import options

    _ = options.pd, options.np


def warm_clickhouse(app: Flask) -> None:
    """Open the ClickHouse client and read each table ingestion writes, before the worker serves
    (gunicorn without ``--preload`` builds the app in the worker, so chdb is opened there, never
    in a parent that forks). The raw-insert baseline opens its client and creates the schema
    before its clock starts; without this, the first timed request would pay for loading chdb
    and its tables."""
    from flask_umetrics.engines.clickhouse.schema import DISTINCT_IDS, EVENTS, PERSONS

    client = app.extensions["umetrics"].event_store.client
    for table in (EVENTS, PERSONS, DISTINCT_IDS):
        client.query(f"SELECT count() FROM {table} WHERE scope_id = ''")
    warm_clickhouse_driver()
