"""The transactional outbox: events written with the changes they describe.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from services.runtime.outbox import create_outbox_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_table(op)
