"""Features with rules (issue 15): value type, hash version, ordered rules and overrides.

Every existing flag and experiment becomes a feature with one experiment rule (its variants,
weights, coverage, targeting and namespace, as before) and no overrides; an off/on flag gets the
boolean value type, everything else the string type (its values are its variant keys). Hashing
stays version 2, which every existing definition used.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TABLE = "umetrics_experiments"
#: Every definition so far is a feature whose one rule is its experiment.
EXPERIMENT_RULE = '[{"type": "experiment", "id": ""}]'


def upgrade() -> None:
    # Columns with defaults and plain SQL: no table copy on SQLite, and it renders offline.
    op.add_column(
        _TABLE, sa.Column("value_type", sa.String(16), nullable=False, server_default="string")
    )
    op.add_column(
        _TABLE, sa.Column("hash_version", sa.Integer(), nullable=False, server_default="2")
    )
    op.add_column(
        _TABLE,
        sa.Column("rules", JSON_TYPE, nullable=False, server_default=EXPERIMENT_RULE),
    )
    op.add_column(_TABLE, sa.Column("overrides", JSON_TYPE, nullable=False, server_default="[]"))
    if op.get_context().dialect.name == "postgresql":
        off_on = "jsonb_path_query_array(variants, '$[*].key') = '[\"off\", \"on\"]'::jsonb"
    else:
        off_on = (
            "json_array_length(variants) = 2 AND json_extract(variants, '$[0].key') = 'off' "
            "AND json_extract(variants, '$[1].key') = 'on'"
        )
    op.execute(f"UPDATE {_TABLE} SET value_type = 'boolean' WHERE {off_on}")


def downgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch:
        batch.drop_column("overrides")
        batch.drop_column("rules")
        batch.drop_column("hash_version")
        batch.drop_column("value_type")
