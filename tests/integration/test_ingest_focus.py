"""The FOCUS project's own sample exports import with the contract's mapping, exactly once."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from costguard.db import transaction
from costguard.usage.models import UsageRecord
from tests.conftest import Database
from tests.integration.test_ingest_files import run, summary

# ../shared/focus-samples next to the repository (the contract's place), or where the variable says.
SAMPLES = Path(os.environ.get("COSTGUARD_FOCUS_SAMPLES", Path(__file__).resolve().parents[3] / "shared/focus-samples"))

MAY = "2025-05-01T00:00:00+00:00"

# (file, extra arguments, the stored rows the README's mapping gives: tenant, model, cost, kind, currency, start)
CONFORMING = [
    (
        "ai_model_billing/multi_model_usage.csv",
        [],
        [
            ("acct-1001", "solora-atlas-5.4-mini", Decimal("2.25"), "usage", "USD", MAY),
            ("acct-1001", "solora-atlas-5.4-mini", Decimal("2.25"), "usage", "USD", MAY),
            ("acct-1001", "solora-atlas-5.5", Decimal("50.00"), "usage", "USD", MAY),
            ("acct-1001", "solora-atlas-5.5", Decimal("50.00"), "usage", "USD", MAY),
        ],
    ),
    (
        "ai_model_billing/per_token_ai_model_api.csv",
        [],
        [
            ("acct-1001", "solora-saturn-4.8", Decimal("42.00"), "usage", "USD", MAY),
            ("acct-1001", "solora-saturn-4.8", Decimal("52.50"), "usage", "USD", MAY),
        ],
    ),
    (
        "ai_model_billing/cached_tokens_via_csp_marketplace.csv",
        [],
        [
            ("acct-1001", "solora-neptune-5.0", Decimal("10.00"), "usage", "USD", MAY),
            ("acct-1001", "solora-neptune-5.0", Decimal("37.50"), "usage", "USD", MAY),
        ],
    ),
    (
        "ai_model_billing/drawdown_via_prepayment_ai_model_api.csv",
        [],
        [
            ("acct-1001", "TOKEN-COMMITMENT-PURCHASE", Decimal("0"), "usage", "USD", MAY),
            ("acct-1001", "solora-saturn-5.0", Decimal("20.00"), "usage", "USD", MAY),
            ("acct-1001", "solora-saturn-5.0", Decimal("30.00"), "usage", "USD", MAY),
        ],
    ),
    (
        "ai_model_billing/drawdown_via_prepayment_ai_model_api.csv",
        ["--cost-column", "BilledCost"],
        [
            ("acct-1001", "TOKEN-COMMITMENT-PURCHASE", Decimal("500000.00"), "usage", "USD", MAY),
            ("acct-1001", "solora-saturn-5.0", Decimal("0"), "usage", "USD", MAY),
            ("acct-1001", "solora-saturn-5.0", Decimal("0"), "usage", "USD", MAY),
        ],
    ),
    (
        "corrections/late_arriving_usage_ledger.csv",
        ["--tenant", "ledger-co"],
        [("ledger-co", "USG-123", Decimal("1500"), "usage", "USD", "2025-07-01T00:00:00+00:00")],
    ),
]


def stored(db: Database) -> list[tuple[str, str | None, Decimal, str, str, str]]:
    with transaction(db.factory) as session:
        rows = session.execute(
            select(
                UsageRecord.tenant,
                UsageRecord.model,
                UsageRecord.cost,
                UsageRecord.kind,
                UsageRecord.currency,
                UsageRecord.timestamp,
            )
        ).all()
    return sorted((t, m, c, k, cur, ts.isoformat()) for t, m, c, k, cur, ts in rows)


@pytest.mark.parametrize(("name", "args", "expected"), CONFORMING, ids=lambda v: v if isinstance(v, str) else None)
def test_conforming_sample_imports_with_the_mapped_tenants_models_and_costs_once(db, name, args, expected):
    path = SAMPLES / name
    first = run(db, str(path), *args)
    assert first.exit_code == 0, first.output
    assert summary(first).startswith(f"accepted {len(expected)}, duplicates 0, rejected 0")
    assert stored(db) == sorted(expected)
    second = run(db, str(path), *args)
    assert second.exit_code == 0, second.output
    assert summary(second).startswith(f"accepted 0, duplicates {len(expected)}, rejected 0")
    assert stored(db) == sorted(expected)


def test_a_sample_without_account_columns_asks_for_a_tenant(db):
    result = run(db, str(SAMPLES / "corrections/late_arriving_usage_ledger.csv"))
    assert result.exit_code == 1
    assert "late_arriving_usage_ledger.csv:2: column SubAccountId" in result.stderr
    assert "--tenant" in result.stderr
    assert stored(db) == []


def test_the_nonconforming_sample_is_refused_naming_line_and_column_and_nothing_is_stored(db):
    path = SAMPLES / "nonconforming/virtual_currency_pricing_model_a1.csv"
    result = run(db, str(path))
    assert result.exit_code == 1
    assert f"{path}:1: column 1: the file starts with a UTF-8 byte-order mark" in result.stderr
    assert stored(db) == []


def test_nonconforming_dates_are_refused_naming_line_and_column(db, tmp_path):
    source = (SAMPLES / "nonconforming/virtual_currency_pricing_model_a1.csv").read_bytes()
    stripped = tmp_path / "no_bom.csv"
    stripped.write_bytes(source.removeprefix(b"\xef\xbb\xbf"))
    result = run(db, str(stripped))
    assert result.exit_code == 1
    assert f"{stripped}:2: column 12 (ChargePeriodStart): '4/1/25' is not an ISO 8601 date-time" in result.stderr
    assert stored(db) == []
