"""Annotations: dated notes per scope that time-series charts mark on their time axis.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "umetrics_annotations",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("occurs_at", TIMESTAMP, nullable=False),
        sa.Column("text", sa.String(400), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_annotations")),
    )
    op.create_index(
        op.f("ix_umetrics_annotations_scope_id_occurs_at"),
        "umetrics_annotations",
        ["scope_id", "occurs_at"],
    )


def downgrade() -> None:
    op.drop_table("umetrics_annotations")
