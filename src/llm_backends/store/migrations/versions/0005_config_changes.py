"""Config version and change log, for change notification and the change feed.

config_version holds one row: the config's monotonic version; config_changes says which
model changed at which version (the last ~1000 versions).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    version = op.create_table(
        "config_version",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.bulk_insert(version, [{"id": 1, "version": 0}])
    op.create_table(
        "config_changes",
        sa.Column("version", sa.BigInteger(), nullable=False),
        # NULL: "anything may have changed" (a write that can't name its models).
        sa.Column("model_name", sa.String(255), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_config_changes_version", "config_changes", ["version"])


def downgrade() -> None:
    op.drop_index("ix_config_changes_version", table_name="config_changes")
    op.drop_table("config_changes")
    op.drop_table("config_version")
