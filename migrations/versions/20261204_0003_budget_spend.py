"""budget spend: period-to-date spend per budget scope, maintained by the fold

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-04 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import costguard.db

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_spend",
        sa.Column("budget_id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("spend", costguard.db.Money(), nullable=False),
        sa.PrimaryKeyConstraint("budget_id", "tenant", name=op.f("pk_budget_spend")),
    )
    op.create_table(
        "budget_spend_basis",
        sa.Column("budget_id", sa.String(length=64), nullable=False),
        sa.Column("basis", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("budget_id", name=op.f("pk_budget_spend_basis")),
    )


def downgrade() -> None:
    op.drop_table("budget_spend_basis")
    op.drop_table("budget_spend")
