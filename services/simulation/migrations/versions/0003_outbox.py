"""The transactional outbox: events written with the changes they describe.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from services.runtime.outbox import create_outbox_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_table(op)
