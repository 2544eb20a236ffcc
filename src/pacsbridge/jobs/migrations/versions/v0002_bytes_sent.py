"""Count a delivery's bytes in 64 bits: a few videos pass 2 GiB.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column(
            "bytes_sent", type_=sa.BigInteger(), existing_type=sa.Integer()
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column(
            "bytes_sent", type_=sa.Integer(), existing_type=sa.BigInteger()
        )
