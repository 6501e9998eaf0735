"""Initial tables: stat store, collector runs, API keys, audit log, scheduler leases and job runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Storage types spelled out here so this migration never changes when the models do.
TIMESTAMP = sa.DateTime(timezone=True)
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "umetrics_snapshot_runs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("captured_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("collectors_ok", sa.Integer(), nullable=False),
        sa.Column("collectors_failed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_snapshot_runs")),
    )
    op.create_index(
        op.f("ix_umetrics_snapshot_runs_scope_id_captured_at"),
        "umetrics_snapshot_runs",
        ["scope_id", "captured_at"],
    )

    op.create_table(
        "umetrics_stat_readings",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("metric_key", sa.String(128), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("captured_at", TIMESTAMP, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("snapshot_id", BIG_ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["umetrics_snapshot_runs.id"],
            name=op.f("fk_umetrics_stat_readings_snapshot_id_umetrics_snapshot_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_stat_readings")),
    )
    op.create_index(
        op.f("ix_umetrics_stat_readings_scope_id_metric_key_captured_at_id"),
        "umetrics_stat_readings",
        ["scope_id", "metric_key", "captured_at", "id"],
    )
    op.create_index(
        op.f("ix_umetrics_stat_readings_captured_at"), "umetrics_stat_readings", ["captured_at"]
    )

    op.create_table(
        "umetrics_collector_runs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("snapshot_id", BIG_ID, nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("collector_key", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["umetrics_snapshot_runs.id"],
            name=op.f("fk_umetrics_collector_runs_snapshot_id_umetrics_snapshot_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_collector_runs")),
    )
    op.create_index(
        op.f("ix_umetrics_collector_runs_snapshot_id"), "umetrics_collector_runs", ["snapshot_id"]
    )
    op.create_index(
        op.f("ix_umetrics_collector_runs_scope_id_collector_key_id"),
        "umetrics_collector_runs",
        ["scope_id", "collector_key", "id"],
    )

    op.create_table(
        "umetrics_api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("permission", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("last_used_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_umetrics_api_keys")),
    )
    op.create_index(op.f("ix_umetrics_api_keys_scope_id"), "umetrics_api_keys", ["scope_id"])

    op.create_table(
        "umetrics_audit_log",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("before", JSON_TYPE, nullable=True),
        sa.Column("after", JSON_TYPE, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_audit_log")),
    )
    op.create_index(
        op.f("ix_umetrics_audit_log_scope_id_at"), "umetrics_audit_log", ["scope_id", "at"]
    )

    op.create_table(
        "umetrics_scheduler_leases",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("acquired_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_umetrics_scheduler_leases")),
    )

    op.create_table(
        "umetrics_job_runs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("job_key", sa.String(200), nullable=False),
        sa.Column("period", sa.String(40), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=False),
        sa.Column("detail", JSON_TYPE, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_job_runs")),
        sa.UniqueConstraint("job_key", "period", name=op.f("uq_umetrics_job_runs_job_key_period")),
    )
    op.create_index(op.f("ix_umetrics_job_runs_started_at"), "umetrics_job_runs", ["started_at"])


def downgrade() -> None:
    for table in (
        "umetrics_job_runs",
        "umetrics_scheduler_leases",
        "umetrics_audit_log",
        "umetrics_api_keys",
        "umetrics_collector_runs",
        "umetrics_stat_readings",
        "umetrics_snapshot_runs",
    ):
        op.drop_table(table)
