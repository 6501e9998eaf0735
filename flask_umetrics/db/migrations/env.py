"""Alembic environment for the umetrics tables only (own version table, ``umetrics_`` prefix)."""

from __future__ import annotations

from typing import Any

from alembic import context

from flask_umetrics.db.migrate import VERSION_TABLE
from flask_umetrics.db.tables import metadata


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    if type_ == "table":
        return bool(name and name.startswith("umetrics_"))
    return True


def run() -> None:
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "version_table": VERSION_TABLE,
        "include_object": include_object,
        "compare_type": True,
        "render_as_batch": True,
    }
    if context.is_offline_mode():
        context.configure(
            dialect_name=context.config.attributes["dialect"], literal_binds=True, **options
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()


run()
