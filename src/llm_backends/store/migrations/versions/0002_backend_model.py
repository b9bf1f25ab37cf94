"""Add llm_backends.backend_model: the model id the inference server itself knows.

mlx_lm.server treats any unknown `model` value as a hub id to download, so the router must
be able to send a specific id (or none at all).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("llm_backends") as batch:
        batch.add_column(sa.Column("backend_model", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("llm_backends") as batch:
        batch.drop_column("backend_model")
