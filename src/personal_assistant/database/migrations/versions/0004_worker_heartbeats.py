"""Worker heartbeats: when each worker process that claims runs last said it was alive.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 11:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personal_assistant.database.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("beat_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
