"""Jobs, their items and deliveries, the outcome of each object, the audit trail.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("submitted_by", sa.String(128), nullable=False),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Column("series", sa.JSON, nullable=False),
        sa.Column("folder", sa.String(300), nullable=False),
        sa.Column("originals_removed_at", _WHEN),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("sop_class_uid", sa.String(64), nullable=False),
        sa.Column("sop_instance_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("transfer_syntax", sa.String(64), nullable=False),
        sa.Column("video", sa.JSON),
        sa.Column("notes", sa.JSON, nullable=False),
    )
    op.create_index("ix_items_job_id", "items", ["job_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", _WHEN, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", _WHEN),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("bytes_sent", sa.Integer, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.UniqueConstraint("job_id", "destination"),
    )
    op.create_index("ix_deliveries_job_id", "deliveries", ["job_id"])
    op.create_index("ix_deliveries_state", "deliveries", ["state"])
    op.create_table(
        "object_outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "delivery_id", sa.Integer, sa.ForeignKey("deliveries.id"), nullable=False
        ),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("at", _WHEN, nullable=False),
        sa.UniqueConstraint("delivery_id", "item_id"),
    )
    op.create_index(
        "ix_object_outcomes_delivery_id", "object_outcomes", ["delivery_id"]
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(32)),
        sa.Column("destination", sa.String(64)),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_job_id", "audit", ["job_id"])


def downgrade() -> None:
    for table in ("audit", "object_outcomes", "deliveries", "items", "jobs"):
        op.drop_table(table)
