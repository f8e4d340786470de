"""Channel URLs are sealed at rest: ``url`` becomes ``url_sealed`` and ``url_masked``.

``url_sealed`` is the Apprise URL as a Fernet token, ``url_masked`` its masked form for display
(:mod:`personal_assistant.channel_keys`). Rows already stored are sealed here with the key of
the environment: ``CHANNEL_KEYS`` (or ``CHANNEL_KEYS_FILE``), else on SQLite the embedded
default's ``var/channel.key`` under ``PA_HOME`` (made if absent). A PostgreSQL database with
channels and no ``CHANNEL_KEYS`` is refused (``ConfigurationError``) and left as it was: the
migration runs in one transaction. A database with no channel needs no key.

The downgrade opens every URL again, with the same keys.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personal_assistant.channel_keys import ChannelCipher, channel_cipher
from personal_assistant.config import Settings
from personal_assistant.redaction import mask_url  # what notifications.channels.mask_apprise_url is

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_channels = sa.table(
    "notification_channels",
    sa.column("id", sa.BigInteger()),
    sa.column("url", sa.Text()),
    sa.column("url_sealed", sa.Text()),
    sa.column("url_masked", sa.Text()),
)


def _cipher() -> ChannelCipher:
    """The key of the environment (module doc), asked for only when a row needs it."""
    return channel_cipher(Settings.from_env(), embedded=op.get_bind().dialect.name == "sqlite")


def upgrade() -> None:
    op.add_column("notification_channels", sa.Column("url_sealed", sa.Text(), nullable=True))
    op.add_column("notification_channels", sa.Column("url_masked", sa.Text(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_channels.c.id, _channels.c.url)).all()
    if rows:
        cipher = _cipher()
        for channel_id, url in rows:
            bind.execute(
                _channels.update()
                .where(_channels.c.id == channel_id)
                .values(url_sealed=cipher.seal(url), url_masked=mask_url(url))
            )
    with op.batch_alter_table("notification_channels") as batch:
        batch.alter_column("url_sealed", existing_type=sa.Text(), nullable=False)
        batch.alter_column("url_masked", existing_type=sa.Text(), nullable=False)
        batch.drop_column("url")


def downgrade() -> None:
    op.add_column("notification_channels", sa.Column("url", sa.Text(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_channels.c.id, _channels.c.url_sealed)).all()
    if rows:
        cipher = _cipher()
        for channel_id, sealed in rows:
            bind.execute(
                _channels.update()
                .where(_channels.c.id == channel_id)
                .values(url=cipher.open(sealed))
            )
    with op.batch_alter_table("notification_channels") as batch:
        batch.alter_column("url", existing_type=sa.Text(), nullable=False)
        batch.drop_column("url_masked")
        batch.drop_column("url_sealed")
