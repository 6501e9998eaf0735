"""Events, persons and the distinct-id map.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TIMESTAMP = sa.DateTime(timezone=True)
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "umetrics_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("uuid", sa.String(64), nullable=True),
        sa.Column("event", sa.String(200), nullable=False),
        sa.Column("distinct_id", sa.String(200), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.String(200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("properties", JSON_TYPE, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_events")),
        sa.UniqueConstraint("scope_id", "uuid", name=op.f("uq_umetrics_events_scope_id_uuid")),
    )
    op.create_index(op.f("ix_umetrics_events_scope_id_ts"), "umetrics_events", ["scope_id", "ts"])
    op.create_index(
        op.f("ix_umetrics_events_scope_id_event_ts"), "umetrics_events", ["scope_id", "event", "ts"]
    )
    op.create_index(
        op.f("ix_umetrics_events_scope_id_distinct_id_ts"),
        "umetrics_events",
        ["scope_id", "distinct_id", "ts"],
    )

    op.create_table(
        "umetrics_persons",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("properties", JSON_TYPE, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("is_identified", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_umetrics_persons")),
    )
    op.create_index(
        op.f("ix_umetrics_persons_scope_id_created_at"),
        "umetrics_persons",
        ["scope_id", "created_at"],
    )

    op.create_table(
        "umetrics_person_distinct_ids",
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("distinct_id", sa.String(200), nullable=False),
        sa.Column("person_id", BIG_ID, nullable=False),
        sa.PrimaryKeyConstraint(
            "scope_id", "distinct_id", name=op.f("pk_umetrics_person_distinct_ids")
        ),
    )
    op.create_index(
        op.f("ix_umetrics_person_distinct_ids_person_id"),
        "umetrics_person_distinct_ids",
        ["person_id"],
    )


def downgrade() -> None:
    for table in ("umetrics_person_distinct_ids", "umetrics_persons", "umetrics_events"):
        op.drop_table(table)
