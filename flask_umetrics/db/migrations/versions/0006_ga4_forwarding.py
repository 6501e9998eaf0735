"""The Measurement Protocol forwarding watermark on GA4 connections.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "umetrics_ga4_connections",
        sa.Column("mp_forwarded_through", sa.BigInteger(), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("umetrics_ga4_connections") as batch:
        batch.drop_column("mp_forwarded_through")
