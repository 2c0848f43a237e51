"""usage batches: the fast ingest path leaves the sums to the worker

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import costguard.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ingested_at", costguard.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_batches")),
    )
    # Nullable and without a default: adding it rewrites nothing, whatever the table's size.
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_usage_records_batch_id ON usage_records USING brin (batch_id)"
            " WITH (pages_per_range = 32, autosummarize = on)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_usage_records_batch_id")
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_column("batch_id")
    op.drop_table("usage_batches")
