"""Alembic, driven from Python: upgrade, downgrade, current revision, and offline SQL."""

from __future__ import annotations

import io
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

#: Our own version table, so we never collide with the host app's Alembic history.
VERSION_TABLE = "umetrics_alembic_version"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config(output: io.StringIO | None = None) -> Config:
    config = Config(output_buffer=output)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the umetrics tables up to ``revision``."""
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the umetrics tables down to ``revision`` (``base`` drops them all)."""
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first upgrade."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str | None:
    """The newest revision this version of flask-umetrics ships."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def sql(dialect: str, revision: str = "head") -> str:
    """The DDL that ``upgrade`` would run on an empty database of ``dialect``, as text."""
    output = io.StringIO()
    config = _config(output)
    config.attributes["dialect"] = dialect
    command.upgrade(config, revision, sql=True)
    return output.getvalue()
