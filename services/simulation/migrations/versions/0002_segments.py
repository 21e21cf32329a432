"""Segments: a simulation's trials split into independently leased ranges.

Several workers can then run one large simulation at once; leases, epochs and
checkpoints move from the simulation to its segments.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.String(48), primary_key=True),
        sa.Column("simulation_id", sa.String(36), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("backend_preference", sa.String(8), nullable=False),
        sa.Column("first_trial", sa.BigInteger, nullable=False),
        sa.Column("end_trial", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("trials_done", sa.BigInteger, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_epoch", sa.Integer, nullable=False),
        sa.Column("lease_expires", sa.Float, nullable=True),
        sa.Column("checkpoint", sa.LargeBinary, nullable=True),
        sa.Column("progress", sa.JSON, nullable=True),
        sa.Column("create_time", sa.Float, nullable=False),
    )
    op.create_index("ix_segments_simulation", "segments", ["simulation_id", "idx"])
    op.create_index("ix_segments_state", "segments", ["state", "lease_expires"])
    with op.batch_alter_table("simulations") as batch:
        batch.add_column(
            sa.Column("segment_trials", sa.BigInteger, nullable=False, server_default="0")
        )
        batch.drop_index("ix_simulations_state")
        for column in ("lease_owner", "lease_epoch", "lease_expires", "checkpoint"):
            batch.drop_column(column)
        batch.create_index("ix_simulations_state", ["state"])


def downgrade() -> None:
    with op.batch_alter_table("simulations") as batch:
        batch.drop_index("ix_simulations_state")
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_epoch", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("lease_expires", sa.Float, nullable=True))
        batch.add_column(sa.Column("checkpoint", sa.LargeBinary, nullable=True))
        batch.drop_column("segment_trials")
        batch.create_index("ix_simulations_state", ["state", "lease_expires"])
    op.drop_table("segments")
