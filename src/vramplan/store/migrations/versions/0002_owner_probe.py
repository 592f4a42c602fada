"""plans.owner (team deployments), plans.result_source, and a one-row health probe table

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        # NULL: saved without --auth tokens (visible to every client of such a server).
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        # 'client' for rows saved before results were computed by the server: recomputed on read.
        batch.add_column(
            sa.Column("result_source", sa.String(16), nullable=False, server_default="client")
        )
    op.create_index("ix_plans_owner_created_at", "plans", ["owner", "created_at"])
    op.create_table(
        "health_probe",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("health_probe")
    op.drop_index("ix_plans_owner_created_at", table_name="plans")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("result_source")
        batch.drop_column("owner")
