"""Seconds the workers computed each simulation, on CPU and on GPU (for usage).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("simulations") as batch:
        batch.add_column(sa.Column("cpu_seconds", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("gpu_seconds", sa.Float(), nullable=False, server_default="0"))
