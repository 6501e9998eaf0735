"""GA4 connections, OAuth flows in progress, and the GA4 report cache.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TIMESTAMP = sa.DateTime(timezone=True)
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "umetrics_ga4_connections",
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("auth_kind", sa.String(16), nullable=False),
        sa.Column("credentials_encrypted", sa.Text(), nullable=False),
        sa.Column("principal", sa.String(320), nullable=True),
        sa.Column("oauth_scopes", JSON_TYPE, nullable=True),
        sa.Column("account_id", sa.String(64), nullable=True),
        sa.Column("property_id", sa.String(64), nullable=True),
        sa.Column("property_name", sa.String(200), nullable=True),
        sa.Column("stream_id", sa.String(64), nullable=True),
        sa.Column("measurement_id", sa.String(32), nullable=True),
        sa.Column("mp_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("connected_by", sa.String(200), nullable=False),
        sa.Column("connected_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("last_sync_at", TIMESTAMP, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("scope_id", name=op.f("pk_umetrics_ga4_connections")),
    )
    op.create_table(
        "umetrics_ga4_oauth_flows",
        sa.Column("state_id", sa.String(64), nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("code_verifier_encrypted", sa.Text(), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("oauth_scopes", JSON_TYPE, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("state_id", name=op.f("pk_umetrics_ga4_oauth_flows")),
    )
    op.create_table(
        "umetrics_ga4_report_cache",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("report", sa.String(64), nullable=False),
        sa.Column("params_hash", sa.String(64), nullable=False),
        sa.Column("params", JSON_TYPE, nullable=False),
        sa.Column("result", JSON_TYPE, nullable=False),
        sa.Column("quota", JSON_TYPE, nullable=True),
        sa.Column("fetched_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_ga4_report_cache")),
        sa.UniqueConstraint(
            "scope_id",
            "report",
            "params_hash",
            name=op.f("uq_umetrics_ga4_report_cache_scope_id_report_params_hash"),
        ),
    )
    op.create_index(
        op.f("ix_umetrics_ga4_report_cache_fetched_at"), "umetrics_ga4_report_cache", ["fetched_at"]
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_umetrics_ga4_report_cache_fetched_at"), table_name="umetrics_ga4_report_cache"
    )
    op.drop_table("umetrics_ga4_report_cache")
    op.drop_table("umetrics_ga4_oauth_flows")
    op.drop_table("umetrics_ga4_connections")
