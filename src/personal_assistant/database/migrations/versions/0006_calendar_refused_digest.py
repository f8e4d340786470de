"""Calendar feeds remember the body they last refused (``calendar_feeds.refused_digest``).

A sha256 (hex) of the refused body with what its refusal depended on (the owner's zone, the
horizon, the 6-hour read period): while the same body comes back in the same period, the sync
keeps the recorded error instead of parsing it again. NULL: nothing refused.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 15:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column: a plain ALTER TABLE on both backends, no table rewrite.
    op.add_column(
        "calendar_feeds", sa.Column("refused_digest", sa.String(length=64), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("calendar_feeds") as batch:
        batch.drop_column("refused_digest")
