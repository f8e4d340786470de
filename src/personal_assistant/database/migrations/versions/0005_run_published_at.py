"""Runs record when their message was last published (``task_runs.published_at``).

NULL: never sent (a ``run_now`` run, a publish that failed after its claim committed). The
scheduler sends such a run on its next tick whatever waits in the run queue.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personal_assistant.database.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column: a plain ALTER TABLE on both backends, no table rewrite.
    op.add_column("task_runs", sa.Column("published_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("published_at")
