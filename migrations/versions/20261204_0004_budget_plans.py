"""budget plans and window spend: what the set-based cycle keeps between cycles

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import costguard.db

UPDATED_IN_PLACE = ("budget_status", "budget_spend", "usage_totals", "budget_window_spend")

# Arrays on PostgreSQL (the only database whose SQL reads the table), JSON elsewhere.
FloatList = sa.JSON().with_variant(postgresql.ARRAY(sa.Float()), "postgresql")
TextList = sa.JSON().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_plans",
        sa.Column("budget_id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("pipeline", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("template", sa.Boolean(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("period_start", costguard.db.UTCDateTime(), nullable=False),
        sa.Column("period_end", costguard.db.UTCDateTime(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", costguard.db.Money(), nullable=False),
        sa.Column("thresholds", FloatList, nullable=False),
        sa.Column("labels", TextList, nullable=False),
        sa.Column("min_threshold", sa.Float(), nullable=True),
        sa.Column("forecast", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("budget_id", name=op.f("pk_budget_plans")),
    )
    op.create_table(
        "budget_window_spend",
        sa.Column("budget_id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("short_window", costguard.db.Money(), nullable=False),
        sa.Column("long_window", costguard.db.Money(), nullable=False),
        sa.PrimaryKeyConstraint("budget_id", "tenant", name=op.f("pk_budget_window_spend")),
    )
    op.create_table(
        "budget_window_basis",
        sa.Column("budget_id", sa.String(length=64), nullable=False),
        sa.Column("basis", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("budget_id", name=op.f("pk_budget_window_basis")),
    )
    op.create_table(
        "budget_window_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("window_end", costguard.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_budget_window_state")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Rewritten in place by every cycle: free room on each page keeps those updates HOT (no
        # index entry, no new page), which halves the status upsert of a large cycle.
        for table in UPDATED_IN_PLACE:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in UPDATED_IN_PLACE:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    op.drop_table("budget_window_state")
    op.drop_table("budget_window_basis")
    op.drop_table("budget_window_spend")
    op.drop_table("budget_plans")
