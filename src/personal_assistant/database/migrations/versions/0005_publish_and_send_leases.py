"""Runs record when their message was published; notifications, when a send began.

``task_runs.published_at``: NULL, never sent (a ``run_now`` run, a publish that failed after
its claim committed); the scheduler sends such a run on its next tick whatever waits in the
run queue. ``notifications.sending_since``: a pending row leased for a send, sent with no
transaction open; NULL, no send under way.

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
    # Nullable columns: a plain ALTER TABLE on both backends, no table rewrite.
    op.add_column("task_runs", sa.Column("published_at", UTCDateTime(), nullable=True))
    op.add_column("notifications", sa.Column("sending_since", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("sending_since")
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("published_at")
