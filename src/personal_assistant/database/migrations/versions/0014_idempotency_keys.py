"""Idempotency keys of the HTTP API (``idempotency_keys``).

One row per ``(user_id, key)`` a caller sent as ``Idempotency-Key`` on a create: the SHA-256 of
the request, when it was claimed (indexed: rows expire after a day) and, once answered, the
answer's status, JSON body and ``Location``. Deleting the user deletes them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 13:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personal_assistant.database.types import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", _ID, autoincrement=False, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("location", sa.String(length=2048), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_keys_created_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
