"""The built-in alert evaluator: admin users (``users.is_admin``) and alert episodes (``alerts``).

An admin is told of the deployment's alerts through their channels. An episode is one time a
condition held: ``pending`` until it has held long enough, ``open`` once told, ``resolved`` once
told it cleared; at most one episode of a key is not resolved (a partial unique index).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 10:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personal_assistant.database.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UNRESOLVED = sa.text("status <> 'resolved'")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "alerts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'open', 'resolved')", name=op.f("ck_alerts_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(
        "ux_alerts_key_unresolved",
        "alerts",
        ["key"],
        unique=True,
        postgresql_where=_UNRESOLVED,
        sqlite_where=_UNRESOLVED,
    )
    op.create_index("ix_alerts_key_opened_at", "alerts", ["key", "opened_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_alerts_key_opened_at", table_name="alerts")
    op.drop_index("ux_alerts_key_unresolved", table_name="alerts")
    op.drop_table("alerts")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("is_admin")
