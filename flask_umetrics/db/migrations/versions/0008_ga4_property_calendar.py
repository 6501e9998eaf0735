"""The linked GA4 property's reporting time zone and currency on GA4 connections.

GA4 cuts days in the property's own time zone: report ranges, the sync's "yesterday" and the
stored day timestamps follow it, not ``UMETRICS_TIMEZONE``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("umetrics_ga4_connections", sa.Column("time_zone", sa.String(64), nullable=True))
    op.add_column("umetrics_ga4_connections", sa.Column("currency", sa.String(3), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("umetrics_ga4_connections") as batch:
        batch.drop_column("currency")
        batch.drop_column("time_zone")
