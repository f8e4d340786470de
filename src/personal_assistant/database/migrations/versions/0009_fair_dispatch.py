"""Runs carry their owner (``task_runs.user_id``), indexed with state and publish time.

Fair dispatch (``runs/fair_dispatch.py``) counts, for the users of each claimed
batch, their runs in the broker or running and their runs sent in the last hour. Through the
task, that count costs one probe per task of the user (a user with 100,000 tasks: 100,000 per
batch); with the owner on the run and the index ``(user_id, state, published_at)``, it reads
only the user's open runs (at most the cap) and the last hour's. A task never changes owner,
so the copy cannot go stale; the run is written with it (``bulk.insert_runs``, ``run_now``).

Rows already stored are filled from their task (one ``UPDATE`` of the table). The column is
nullable: a run written outside the package without it is simply not limited, never refused.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-04 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

_INDEX = "ix_task_runs_user_id_state_published_at"


def upgrade() -> None:
    # A nullable column: a plain ALTER TABLE on both backends, no table rewrite.
    op.add_column(
        "task_runs",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE task_runs SET user_id = ai_tasks.user_id FROM ai_tasks "
            "WHERE ai_tasks.id = task_runs.task_id"
        )
    else:
        op.execute(
            "UPDATE task_runs SET user_id = "
            "(SELECT ai_tasks.user_id FROM ai_tasks WHERE ai_tasks.id = task_runs.task_id)"
        )
    with op.batch_alter_table("task_runs") as batch:
        batch.create_index(_INDEX, ["user_id", "state", "published_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_index(_INDEX)
        batch.drop_column("user_id")
