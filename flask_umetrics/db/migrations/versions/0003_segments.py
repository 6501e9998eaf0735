"""Saved segments and the members of static segments.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TIMESTAMP = sa.DateTime(timezone=True)
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "umetrics_segments",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("filters", JSON_TYPE, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_segments")),
        sa.UniqueConstraint("scope_id", "key", name=op.f("uq_umetrics_segments_scope_id_key")),
    )
    op.create_table(
        "umetrics_segment_members",
        sa.Column("segment_id", BIG_ID, nullable=False),
        sa.Column("distinct_id", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["umetrics_segments.id"],
            name=op.f("fk_umetrics_segment_members_segment_id_umetrics_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "segment_id", "distinct_id", name=op.f("pk_umetrics_segment_members")
        ),
    )


def downgrade() -> None:
    op.drop_table("umetrics_segment_members")
    op.drop_table("umetrics_segments")
