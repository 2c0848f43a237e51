"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-12-04 19:38:09.926904
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import costguard.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "alert_receivers",
        sa.Column("receiver", sa.String(length=512), nullable=False),
        sa.Column("last_success_at", costguard.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", costguard.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("notifications_total", sa.BigInteger(), nullable=False),
        sa.Column("failures_total", sa.BigInteger(), nullable=False),
        sa.Column("last_resend_at", costguard.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("receiver", name=op.f("pk_alert_receivers")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("alertname", sa.String(length=64), nullable=False),
        sa.Column("budget_id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("pipeline", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "labels", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "annotations", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("generator_url", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("pending_flips", sa.Integer(), nullable=False),
        sa.Column("starts_at", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", costguard.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("period_end", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_alerts_fingerprint")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_budget_id", ["budget_id"], unique=False)
        batch_op.create_index("ix_alerts_status", ["status"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", costguard.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_tokens_secret_hash")),
    )
    op.create_table(
        "budget_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("budget_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("at", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "before", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column(
            "after", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_audit")),
    )
    with op.batch_alter_table("budget_audit", schema=None) as batch_op:
        batch_op.create_index("ix_budget_audit_budget_id_at", ["budget_id", "at"], unique=False)

    op.create_table(
        "budget_status",
        sa.Column("budget_id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("pipeline", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("period_start", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", costguard.db.Money(precision=30, scale=12), nullable=False),
        sa.Column("spend", costguard.db.Money(precision=30, scale=12), nullable=False),
        sa.Column("utilization", sa.Float(), nullable=False),
        sa.Column("forecast_spend", costguard.db.Money(precision=30, scale=12), nullable=False),
        sa.Column("forecast_utilization", sa.Float(), nullable=False),
        sa.Column("burn_rate_short", sa.Float(), nullable=False),
        sa.Column("burn_rate_long", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("evaluated_at", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("budget_id", "tenant", name=op.f("pk_budget_status")),
    )
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("pipeline", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("amount", costguard.db.Money(precision=30, scale=12), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "thresholds", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("forecast", sa.Boolean(), nullable=False),
        sa.Column(
            "labels", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("runbook_url", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("managed_by_file", sa.String(length=512), nullable=True),
        sa.Column("created_at", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budgets")),
    )
    op.create_table(
        "evaluation_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_finished_at", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_evaluated_for", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_duration_seconds", sa.Float(), nullable=False),
        sa.Column("budgets_evaluated", sa.Integer(), nullable=False),
        sa.Column("budgets_failed", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_evaluation_state")),
    )
    op.create_table(
        "usage_records",
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.String(length=256), nullable=False),
        sa.Column("timestamp", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("pipeline", sa.String(length=128), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("cost", costguard.db.Money(precision=30, scale=12), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "attributes", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("ingested_at", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "event_id", name=op.f("pk_usage_records")),
    )
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.create_index("ix_usage_records_tenant_timestamp", ["tenant", "timestamp"], unique=False)

    op.create_table(
        "usage_rollup_pending",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("pipeline", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("bucket_start", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cost", costguard.db.Money(precision=30, scale=12), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_rollup_pending")),
    )
    op.create_table(
        "usage_rollups",
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("bucket_start", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("pipeline", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cost", costguard.db.Money(precision=30, scale=12), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "bucket_start", "pipeline", "model", "kind", name=op.f("pk_usage_rollups")),
    )
    with op.batch_alter_table("usage_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_usage_rollups_bucket_start", ["bucket_start"], unique=False)

    op.create_table(
        "usage_totals",
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("pipeline", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cost", costguard.db.Money(precision=30, scale=12), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("last_timestamp", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "pipeline", "model", "kind", name=op.f("pk_usage_totals")),
    )
    op.create_table(
        "worker_claims",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_claims")),
    )
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("receiver", sa.String(length=512), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", costguard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", costguard.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_notifications_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notifications")),
    )
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alert_notifications_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_notifications_status_next_attempt_at")

    op.drop_table("alert_notifications")
    op.drop_table("worker_claims")
    op.drop_table("usage_totals")
    with op.batch_alter_table("usage_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_rollups_bucket_start")

    op.drop_table("usage_rollups")
    op.drop_table("usage_rollup_pending")
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_records_tenant_timestamp")

    op.drop_table("usage_records")
    op.drop_table("evaluation_state")
    op.drop_table("budgets")
    op.drop_table("budget_status")
    with op.batch_alter_table("budget_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_budget_audit_budget_id_at")

    op.drop_table("budget_audit")
    op.drop_table("api_tokens")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_status")
        batch_op.drop_index("ix_alerts_budget_id")

    op.drop_table("alerts")
    op.drop_table("alert_receivers")
