"""Files, shares and per-tenant storage usage.

Revision ID: 0001
Revises:
"""

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        Column("id", String(36), primary_key=True),
        Column("tenant_id", String(36), nullable=False),
        Column("owner_id", String(36), nullable=False),
        Column("name", String(255), nullable=False),
        Column("content_type", String(255), nullable=False),
        Column("size", BigInteger, nullable=False),
        Column("sha256", String(64), nullable=False),
        Column("key_id", String(64), nullable=False),
        Column("wrapped_key", LargeBinary, nullable=False),
        Column("nonce_prefix", LargeBinary, nullable=False),
        Column("chunk_size", Integer, nullable=False),
        Column("create_time", DateTime(timezone=True), nullable=False),
        Column("update_time", DateTime(timezone=True), nullable=False),
        Column("request_id", String(36), nullable=True),
    )
    op.create_index("ux_files_tenant_request", "files", ["tenant_id", "request_id"], unique=True)
    op.create_index("ix_files_tenant_create", "files", ["tenant_id", "create_time"])
    op.create_index("ix_files_key_id", "files", ["key_id"])
    op.create_table(
        "file_shares",
        Column("file_id", String(36), ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
        Column("user_id", String(36), primary_key=True),
        Column("create_time", DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_file_shares_user", "file_shares", ["user_id"])
    op.create_table(
        "storage_usage",
        Column("tenant_id", String(36), primary_key=True),
        Column("bytes_used", BigInteger, nullable=False),
        Column("file_count", BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("storage_usage")
    op.drop_table("file_shares")
    op.drop_table("files")
