"""Fleet routing: several servers per model, their weights and limits, fallback chains.

`endpoints` holds the servers beyond `endpoint_url` as a JSON list of
{url, weight, max_concurrency}; `weight` and `max_concurrency` are endpoint_url's own;
`fallbacks` is a JSON list of model names.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("llm_backends") as batch:
        batch.add_column(sa.Column("endpoints", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("weight", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("max_concurrency", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("fallbacks", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("llm_backends") as batch:
        batch.drop_column("fallbacks")
        batch.drop_column("max_concurrency")
        batch.drop_column("weight")
        batch.drop_column("endpoints")
