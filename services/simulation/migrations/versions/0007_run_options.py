"""Simulations keep their modelling options (RiskSimtable seeds, convergence, scenarios).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("simulations") as batch:
        batch.add_column(sa.Column("options", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("simulations") as batch:
        batch.drop_column("options")
