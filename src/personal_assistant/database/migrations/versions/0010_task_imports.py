"""The import ledger of ``MAX_IMPORTS_PER_HOUR`` (``task_imports``).

One row per import into a user: when, and how many tasks it brought. Kept apart from the
tasks, so that deleting imported tasks gives no import back. Indexed by ``(user_id,
imported_at)``: the quota sums one user's last hour.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personal_assistant.database.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "task_imports",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.Column("tasks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_task_imports_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_imports")),
    )
    op.create_index(
        "ix_task_imports_user_id_imported_at",
        "task_imports",
        ["user_id", "imported_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_task_imports_user_id_imported_at", table_name="task_imports")
    op.drop_table("task_imports")
