"""Calendar feeds and their events; daily digests (users' digest time, outbox rows of no run).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 10:30:32.575106
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personal_assistant.database.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=48), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("lead_minutes", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("interval_minutes", sa.Integer(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_sync_at", UTCDateTime(), nullable=True),
        sa.Column("last_synced_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("etag", sa.String(length=256), nullable=True),
        sa.Column("last_modified", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", UTCDateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.CheckConstraint("status IN ('active', 'paused')", name=op.f("ck_calendar_feeds_status")),
        sa.CheckConstraint(
            "horizon_days >= 1 AND horizon_days <= 366", name=op.f("ck_calendar_feeds_horizon_days")
        ),
        sa.CheckConstraint(
            "interval_minutes >= 1", name=op.f("ck_calendar_feeds_interval_minutes")
        ),
        sa.CheckConstraint(
            "lead_minutes >= 0 AND lead_minutes <= 10080",
            name=op.f("ck_calendar_feeds_lead_minutes"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_calendar_feeds_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_feeds")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_calendar_feeds_user_id_name")),
    )
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.create_index(
            "ix_calendar_feeds_status_next_sync_at", ["status", "next_sync_at"], unique=False
        )

    op.create_table(
        "calendar_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("feed_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("uid", sa.String(length=512), nullable=False),
        sa.Column("occurrence_key", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("all_day", sa.Boolean(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "updated_at", UTCDateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["feed_id"],
            ["calendar_feeds.id"],
            name=op.f("fk_calendar_events_feed_id_calendar_feeds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["ai_tasks.id"],
            name=op.f("fk_calendar_events_task_id_ai_tasks"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_events")),
        sa.UniqueConstraint(
            "feed_id",
            "uid",
            "occurrence_key",
            name=op.f("uq_calendar_events_feed_id_uid_occurrence_key"),
        ),
    )
    with op.batch_alter_table("calendar_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_events_task_id"), ["task_id"], unique=False)

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=64), nullable=True))
        batch_op.alter_column(
            "run_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        )
        batch_op.alter_column(
            "task_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_notifications_user_id_channel_dedupe_key"),
            ["user_id", "channel", "dedupe_key"],
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest_at", sa.Time(), nullable=True))
        batch_op.add_column(sa.Column("digest_channel", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("next_digest_at", UTCDateTime(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_users_next_digest_at"), ["next_digest_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_next_digest_at"))
        batch_op.drop_column("next_digest_at")
        batch_op.drop_column("digest_channel")
        batch_op.drop_column("digest_at")

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_notifications_user_id_channel_dedupe_key"), type_="unique"
        )
        batch_op.alter_column(
            "task_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        )
        batch_op.alter_column(
            "run_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        )
        batch_op.drop_column("dedupe_key")

    with op.batch_alter_table("calendar_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendar_events_task_id"))

    op.drop_table("calendar_events")
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.drop_index("ix_calendar_feeds_status_next_sync_at")

    op.drop_table("calendar_feeds")
