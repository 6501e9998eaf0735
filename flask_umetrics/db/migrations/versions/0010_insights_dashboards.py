"""Saved insights, dashboards and their tiles (issue 16, item 8).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TIMESTAMP = sa.DateTime(timezone=True)
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _owned() -> list[sa.Column[object]]:
    """The columns every saved object has: id, scope, name, description, author, times."""
    return [
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "umetrics_insights",
        *_owned(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("params", JSON_TYPE, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_insights")),
    )
    op.create_index(
        op.f("ix_umetrics_insights_scope_id_name"), "umetrics_insights", ["scope_id", "name"]
    )
    op.create_table(
        "umetrics_dashboards",
        *_owned(),
        sa.Column("date_range", sa.String(32), nullable=True),
        sa.Column("date_from", TIMESTAMP, nullable=True),
        sa.Column("date_to", TIMESTAMP, nullable=True),
        sa.Column("filters", JSON_TYPE, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_dashboards")),
    )
    op.create_index(
        op.f("ix_umetrics_dashboards_scope_id_name"), "umetrics_dashboards", ["scope_id", "name"]
    )
    op.create_table(
        "umetrics_dashboard_tiles",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("dashboard_id", BIG_ID, nullable=False),
        sa.Column("insight_id", BIG_ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dashboard_id"],
            ["umetrics_dashboards.id"],
            name=op.f("fk_umetrics_dashboard_tiles_dashboard_id_umetrics_dashboards"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["insight_id"],
            ["umetrics_insights.id"],
            name=op.f("fk_umetrics_dashboard_tiles_insight_id_umetrics_insights"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_dashboard_tiles")),
    )
    op.create_index(
        op.f("ix_umetrics_dashboard_tiles_dashboard_id_position"),
        "umetrics_dashboard_tiles",
        ["dashboard_id", "position"],
    )
    op.create_index(
        op.f("ix_umetrics_dashboard_tiles_insight_id"), "umetrics_dashboard_tiles", ["insight_id"]
    )


def downgrade() -> None:
    op.drop_table("umetrics_dashboard_tiles")
    op.drop_table("umetrics_dashboards")
    op.drop_table("umetrics_insights")
