"""Initial schema: models, simulations (the queue, leases, checkpoints), results, workers.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("file_id", sa.String(36), nullable=True),
        sa.Column("creator_id", sa.String(64), nullable=False),
        sa.Column("compiled", sa.LargeBinary, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("create_time", sa.Float, nullable=False),
        sa.Column("update_time", sa.Float, nullable=False),
        sa.Column("delete_time", sa.Float, nullable=True),
    )
    op.create_index("ix_models_tenant_time", "models", ["tenant_id", "create_time"])
    op.create_index("ux_models_tenant_request", "models", ["tenant_id", "request_id"], unique=True)
    op.create_table(
        "simulations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("model_id", sa.String(36), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("trials", sa.BigInteger, nullable=False),
        sa.Column("chunk_trials", sa.BigInteger, nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("sampling", sa.String(8), nullable=False),
        sa.Column("backend_preference", sa.String(8), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.Text, nullable=False),
        sa.Column("trials_done", sa.BigInteger, nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_epoch", sa.Integer, nullable=False),
        sa.Column("lease_expires", sa.Float, nullable=True),
        sa.Column("checkpoint", sa.LargeBinary, nullable=True),
        sa.Column("progress", sa.JSON, nullable=True),
        sa.Column("create_time", sa.Float, nullable=False),
        sa.Column("update_time", sa.Float, nullable=False),
        sa.Column("start_time", sa.Float, nullable=True),
        sa.Column("end_time", sa.Float, nullable=True),
    )
    op.create_index("ix_simulations_tenant_time", "simulations", ["tenant_id", "create_time"])
    op.create_index("ix_simulations_state", "simulations", ["state", "lease_expires"])
    op.create_index("ix_simulations_cache", "simulations", ["tenant_id", "cache_key", "state"])
    op.create_index(
        "ux_simulations_tenant_request", "simulations", ["tenant_id", "request_id"], unique=True
    )
    op.create_table(
        "results",
        sa.Column("simulation_id", sa.String(36), primary_key=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("create_time", sa.Float, nullable=False),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("devices", sa.JSON, nullable=False),
        sa.Column("current_job", sa.String(36), nullable=True),
        sa.Column("heartbeat", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("results")
    op.drop_table("simulations")
    op.drop_table("models")
