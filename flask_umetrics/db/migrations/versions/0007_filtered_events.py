"""Per-scope, per-day counts of events dropped at ingestion (bots, Do-Not-Track).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "umetrics_filtered_events",
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope_id", "day", "reason", name="pk_umetrics_filtered_events"),
    )


def downgrade() -> None:
    op.drop_table("umetrics_filtered_events")
