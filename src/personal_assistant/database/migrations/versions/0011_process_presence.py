"""What each beating process is: its role (worker or scheduler), queues, version and settings.

``pa status`` and ``pa doctor`` read them: a queue without a live consumer, no live scheduler,
workers on different code or with unsafe delivery settings. Existing rows are workers.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 03:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("worker_heartbeats") as batch:
        batch.add_column(
            sa.Column("role", sa.String(length=20), nullable=False, server_default="worker")
        )
        batch.add_column(sa.Column("queues", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("version", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("config", sa.JSON(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_worker_heartbeats_role"), "role IN ('worker', 'scheduler')"
        )


def downgrade() -> None:
    with op.batch_alter_table("worker_heartbeats") as batch:
        batch.drop_constraint(op.f("ck_worker_heartbeats_role"), type_="check")
        batch.drop_column("config")
        batch.drop_column("version")
        batch.drop_column("queues")
        batch.drop_column("role")
