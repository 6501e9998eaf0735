"""Feature flags and experiments, sticky assignments, exposures, and flag cache generations.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TIMESTAMP = sa.DateTime(timezone=True)
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "umetrics_experiments",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("variants", JSON_TYPE, nullable=False),
        sa.Column("coverage", sa.Double(), nullable=False),
        sa.Column("seed", sa.String(200), nullable=False),
        sa.Column("bucket_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("shipped_variant", sa.String(100), nullable=True),
        sa.Column("killed", sa.Boolean(), nullable=False),
        sa.Column("conditions", JSON_TYPE, nullable=True),
        sa.Column("namespace", JSON_TYPE, nullable=True),
        sa.Column("metrics", JSON_TYPE, nullable=False),
        sa.Column("start_at", TIMESTAMP, nullable=True),
        sa.Column("stop_at", TIMESTAMP, nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("stopped_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_experiments")),
        sa.UniqueConstraint("scope_id", "key", name=op.f("uq_umetrics_experiments_scope_id_key")),
    )
    op.create_table(
        "umetrics_assignments",
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(200), nullable=False),
        sa.Column("experiment_key", sa.String(100), nullable=False),
        sa.Column("bucket_version", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(100), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("assigned_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint(
            "scope_id",
            "subject_id",
            "experiment_key",
            "bucket_version",
            name=op.f("pk_umetrics_assignments"),
        ),
    )
    op.create_table(
        "umetrics_exposures",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("experiment_key", sa.String(100), nullable=False),
        sa.Column("bucket_version", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.String(200), nullable=False),
        sa.Column("variant", sa.String(100), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_exposures")),
        sa.UniqueConstraint(
            "scope_id",
            "experiment_key",
            "bucket_version",
            "subject_id",
            name=op.f("uq_umetrics_exposures_scope_id_experiment_key_bucket_version_subject_id"),
        ),
    )
    op.create_index(
        op.f("ix_umetrics_exposures_scope_id_subject_id"),
        "umetrics_exposures",
        ["scope_id", "subject_id"],
    )
    op.create_index(op.f("ix_umetrics_exposures_ts"), "umetrics_exposures", ["ts"])
    op.create_table(
        "umetrics_flag_generations",
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("scope_id", name=op.f("pk_umetrics_flag_generations")),
    )


def downgrade() -> None:
    op.drop_table("umetrics_flag_generations")
    op.drop_index(op.f("ix_umetrics_exposures_ts"), table_name="umetrics_exposures")
    op.drop_index(
        op.f("ix_umetrics_exposures_scope_id_subject_id"), table_name="umetrics_exposures"
    )
    op.drop_table("umetrics_exposures")
    op.drop_table("umetrics_assignments")
    op.drop_table("umetrics_experiments")
