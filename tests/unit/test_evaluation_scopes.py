"""Budget windows (what a budget sums this cycle) and when a steady alert needs no write."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from costguard.alerts.logic import FIRING, Step, unchanged
from costguard.budgets.periods import period_containing
from costguard.evaluation.scopes import BudgetWindow

KOLKATA = period_containing("monthly", ZoneInfo("Asia/Kolkata"), datetime(2026, 12, 4, tzinfo=UTC))


def window(tenant: str = "*", pipeline: str = "*", model: str = "*", period=KOLKATA) -> BudgetWindow:
    return BudgetWindow("b", tenant, pipeline, model, period.start, period.end)


def test_wildcards_cover_every_value_and_names_only_themselves():
    assert window().covers("acme", "", "")
    assert window(tenant="acme", model="gpt-4o").covers("acme", "chat", "gpt-4o")
    assert not window(tenant="acme", model="gpt-4o").covers("acme", "chat", "")
    assert not window(tenant="acme").covers("globex", "chat", "gpt-4o")
    assert not window(pipeline="chat").covers("acme", "", "gpt-4o")


def test_period_of_a_half_hour_offset_zone_is_a_whole_number_of_15_minute_buckets():
    w = window()
    assert w.period_start == datetime(2026, 11, 30, 18, 30, tzinfo=UTC)
    assert w.in_period(datetime(2026, 11, 30, 18, 30, tzinfo=UTC))
    assert not w.in_period(datetime(2026, 11, 30, 18, 15, tzinfo=UTC))
    assert w.period_start.timestamp() % 900 == 0 and w.period_end.timestamp() % 900 == 0


def test_basis_changes_with_scope_and_with_period_rollover_only():
    december = window(tenant="acme")
    assert december.basis == window(tenant="acme").basis
    assert december.basis != window(tenant="acme", pipeline="chat").basis
    january = period_containing("monthly", ZoneInfo("Asia/Kolkata"), datetime(2027, 1, 4, tzinfo=UTC))
    assert december.basis != window(tenant="acme", period=january).basis


def test_steady_firing_alert_is_not_rewritten_until_its_value_moves_five_points():
    steady = Step(FIRING, 0, None)
    assert unchanged(0, 0.853, steady, 0.89)
    assert not unchanged(0, 0.853, steady, 0.91)
    assert not unchanged(0, 0.853, Step(FIRING, 0, FIRING), 0.853)
    assert not unchanged(1, 0.853, steady, 0.853)  # a pending flip was cleared: store it
