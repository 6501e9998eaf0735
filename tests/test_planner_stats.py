"""A fresh PostgreSQL database gets planner statistics from the first thousand events written,
instead of planning reports as if the tables were empty until autovacuum comes by."""

from __future__ import annotations

import uuid

from flask import Flask
from sqlalchemy import Engine, text

from flask_umetrics import UMetrics
from flask_umetrics.db import migrate
from flask_umetrics.db.planner_stats import TABLES, THRESHOLD, analyze_never_analyzed
from flask_umetrics.events import ingest_events

from .conftest import postgres_url, reset_postgres_schema


def reltuples(engine: Engine) -> dict[str, float]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(:names)"),
            {"names": list(TABLES)},
        )
        return {name: float(value) for name, value in rows}


def batch(n: int) -> list[dict[str, object]]:
    return [
        {"event": "e", "distinct_id": f"u{i % 300}", "uuid": str(uuid.uuid4())} for i in range(n)
    ]


def test_the_first_thousand_events_analyse_never_analysed_tables(
    postgres_engine: Engine, tmp_path: object
) -> None:
    reset_postgres_schema(postgres_engine)
    migrate.upgrade(postgres_engine)  # brand-new tables: never analysed
    assert set(reltuples(postgres_engine).values()) == {-1.0}
    app = Flask("planner", instance_path=str(tmp_path))
    app.config.update(UMETRICS_DATABASE_URL=postgres_url(), UMETRICS_BUILTIN_COLLECTORS=False)
    UMetrics().init_app(app)
    with app.app_context():
        engine = app.extensions["umetrics"].engine
        ingest_events(batch(THRESHOLD // 2), scope_id="default")
        assert set(reltuples(engine).values()) == {-1.0}  # too few rows to be worth it yet
        ingest_events(batch(THRESHOLD // 2 + 1), scope_id="default")
        counts = reltuples(engine)
        assert counts["umetrics_events"] == THRESHOLD + 1
        assert counts["umetrics_persons"] == counts["umetrics_person_distinct_ids"] == 300
        assert analyze_never_analyzed(engine) == []  # nothing left to do, and done once
        engine.dispose()
