"""Add the audit log and backend credentials (llm_backends.api_key_encrypted/api_key_header).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("llm_backends") as batch:
        batch.add_column(sa.Column("api_key_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("api_key_header", sa.String(255), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_token_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("target_model_name", sa.String(255), nullable=True),
        sa.Column("target_name", sa.String(255), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_target", "audit_log", ["target_type", "target_id"])
    op.create_index("ix_audit_log_model_name", "audit_log", ["target_model_name"])


def downgrade() -> None:
    op.drop_table("audit_log")
    with op.batch_alter_table("llm_backends") as batch:
        batch.drop_column("api_key_header")
        batch.drop_column("api_key_encrypted")
