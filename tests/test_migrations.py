"""Migrations: they build exactly the tables the code expects, and go up and down cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import inspect

from flask_umetrics.db import migrate
from flask_umetrics.db.tables import metadata


def _only_ours(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    return type_ != "table" or bool(
        name and name.startswith("umetrics_") and name != migrate.VERSION_TABLE
    )


def test_migrations_match_the_table_definitions(app: Flask) -> None:
    engine = app.extensions["umetrics"].engine
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_object": _only_ours,
                "version_table": migrate.VERSION_TABLE,
            },
        )
        assert compare_metadata(context, metadata) == []


def test_downgrade_to_base_and_back(app: Flask) -> None:
    engine = app.extensions["umetrics"].engine
    migrate.downgrade(engine, "base")
    leftover = [t for t in inspect(engine).get_table_names() if t.startswith("umetrics_")]
    assert leftover == [migrate.VERSION_TABLE]
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())


def test_offline_sql_for_both_dialects() -> None:
    for dialect, marker in (("sqlite", "DATETIME"), ("postgresql", "TIMESTAMP WITH TIME ZONE")):
        ddl = migrate.sql(dialect)
        assert "CREATE TABLE umetrics_alembic_version" in ddl
        for table in metadata.tables:
            assert f"CREATE TABLE {table}" in ddl
        assert marker in ddl
    assert "JSONB" in migrate.sql("postgresql")
