"""Every VACUUM of the hot tables cleans their indexes: ``vacuum_index_cleanup = on``.

A claim moves each task's ``next_run_at`` and leaves its old entry in the ``(status,
next_run_at, id)`` index dead, at the front of the index, where every idle tick reads. Since
PostgreSQL 14 a VACUUM skips the index pass when under 2 % of the table's pages hold dead
rows. Migration 0001 starts autovacuum at about 1 % of the rows dead, so on a large table it
would skip the pass nearly every time, and the dead entries stayed: at 10,000,000 tasks the
idle tick read 508 buffers after a VACUUM instead of about 14 (docs/performance.md). The
cost: each VACUUM of these tables scans their indexes, as it always did before PostgreSQL 14.
PostgreSQL only (the option exists from PostgreSQL 12 on).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 12:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

HOT_TABLES = ("ai_tasks", "task_runs")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in HOT_TABLES:
            op.execute(f"ALTER TABLE {table} SET (vacuum_index_cleanup = on)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in HOT_TABLES:
            op.execute(f"ALTER TABLE {table} RESET (vacuum_index_cleanup)")
