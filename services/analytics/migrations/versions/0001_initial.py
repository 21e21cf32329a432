"""Simulation and file facts taken in from events, recorded quantities, the outbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.runtime.outbox import create_outbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingested",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("ingest_time", sa.Float(), nullable=False),
    )
    op.create_table(
        "sim_facts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("trials", sa.Float(), nullable=False),
        sa.Column("trials_done", sa.Float(), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("model_inputs", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.Float(), nullable=False),
        sa.Column("start_time", sa.Float()),
        sa.Column("end_time", sa.Float()),
        sa.Column("cpu_seconds", sa.Float(), nullable=False),
        sa.Column("gpu_seconds", sa.Float(), nullable=False),
    )
    op.create_index("ix_sim_facts_tenant_create", "sim_facts", ["tenant_id", "create_time"])
    op.create_index("ix_sim_facts_tenant_end", "sim_facts", ["tenant_id", "end_time"])
    op.create_table(
        "file_facts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("size", sa.Float(), nullable=False),
        sa.Column("upload_time", sa.Float(), nullable=False),
        sa.Column("delete_time", sa.Float()),
    )
    op.create_index("ix_file_facts_tenant_upload", "file_facts", ["tenant_id", "upload_time"])
    op.create_table(
        "usage_records",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("event_time", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_usage_records_tenant_time", "usage_records", ["tenant_id", "metric", "event_time"]
    )
    create_outbox_table(op)
