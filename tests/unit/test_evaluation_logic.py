from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from costguard.alerts.logic import FIRING, RESOLVED, AlertKey, step
from costguard.budgets.periods import period_containing
from costguard.evaluation import logic

PERIOD = period_containing("monthly", ZoneInfo("UTC"), datetime(2026, 12, 16, tzinfo=UTC))
MID = datetime(2026, 12, 16, 12, tzinfo=UTC)


def evaluate(spend: str, *, long_window: str = "0", short_window: str = "0", at: datetime = MID):
    return logic.evaluate_scope(
        period=PERIOD,
        at=at,
        amount=Decimal("1000"),
        thresholds=(0.5, 0.8),
        spend=Decimal(spend),
        short_window_spend=Decimal(short_window),
        long_window_spend=Decimal(long_window),
    )


def test_states_follow_thresholds():
    assert evaluate("100").state == "ok"
    assert evaluate("500").state == "approaching"
    assert evaluate("1000").state == "exceeded"


def test_conditions_name_each_crossed_threshold():
    found = logic.conditions(evaluate("850"), thresholds=(0.5, 0.8), forecast=False, at=MID)
    assert {(c.alertname, c.threshold) for c in found} == {
        (logic.APPROACHING, "0.5"),
        (logic.APPROACHING, "0.8"),
    }


def test_forecast_extrapolates_period_pace_blended_with_recent_pace():
    # Half the month gone (372 of 744 hours), 484 spent evenly: the forecast doubles it.
    even = evaluate("484", long_window=str(Decimal("484") * 6 / Decimal(372)))
    assert abs(even.forecast_utilization - 0.968) < 1e-9
    spike = evaluate("484", long_window="200")
    assert spike.forecast_spend > even.forecast_spend


def test_burn_rate_alert_needs_both_windows_fast():
    # 200 in the last 6h and 50 in the last hour: far faster than 1000/month.
    fast = evaluate("300", long_window="200", short_window="50")
    assert any(
        c.alertname == logic.BURN_RATE_HIGH for c in logic.conditions(fast, thresholds=(), forecast=False, at=MID)
    )
    quiet_now = evaluate("300", long_window="200", short_window="0")
    assert not any(
        c.alertname == logic.BURN_RATE_HIGH for c in logic.conditions(quiet_now, thresholds=(), forecast=False, at=MID)
    )


def test_alert_fires_once_and_resolves_only_after_hysteresis():
    fired = step(None, 0, True)
    assert fired is not None and fired.event == FIRING
    still = step(FIRING, 0, True)
    assert still is not None and still.event is None
    one_dip = step(FIRING, 0, False)
    assert one_dip is not None and one_dip.event is None and one_dip.status == FIRING
    back = step(FIRING, one_dip.pending_flips, True)
    assert back is not None and back.event is None and back.pending_flips == 0
    gone = step(FIRING, 1, False)
    assert gone is not None and gone.event == RESOLVED


def test_resolved_alert_needs_a_sustained_condition_to_fire_again():
    first = step(RESOLVED, 0, True)
    assert first is not None and first.event is None
    second = step(RESOLVED, first.pending_flips, True)
    assert second is not None and second.event == FIRING


def test_fingerprint_is_stable_and_distinguishes_thresholds():
    a = AlertKey("b", "t", "*", "*", "2026-12", logic.APPROACHING, "0.5")
    b = AlertKey("b", "t", "*", "*", "2026-12", logic.APPROACHING, "0.8")
    assert a.fingerprint == AlertKey("b", "t", "*", "*", "2026-12", logic.APPROACHING, "0.5").fingerprint
    assert len(a.fingerprint) == 16
    assert a.fingerprint != b.fingerprint


def test_period_elapsed_fraction_is_clamped():
    assert PERIOD.elapsed_fraction(PERIOD.start - timedelta(days=1)) == 0
    assert PERIOD.elapsed_fraction(PERIOD.end + timedelta(days=1)) == 1


def test_a_steady_pace_does_not_look_like_a_spike_just_after_the_period_starts():
    # A daily budget of 30 spent at a steady 1 an hour. Ten minutes into a new day the period has
    # 10 minutes of spend, but the 6-hour window holds 6 hours of it (5h50 of them yesterday's):
    # the recent pace is 6 / 6h = 1 an hour, not 6 / 10 minutes, and the forecast stays near 24.
    day = period_containing("daily", ZoneInfo("UTC"), datetime(2026, 12, 17, 0, 10, tzinfo=UTC))
    at = day.start + timedelta(minutes=10)
    evaluation = logic.evaluate_scope(
        period=day,
        at=at,
        amount=Decimal("30"),
        thresholds=(),
        spend=Decimal(10) / 60,
        short_window_spend=Decimal(1),
        long_window_spend=Decimal(6),
    )
    assert abs(evaluation.forecast_spend - 24) < Decimal("0.001")
    assert not logic.conditions(evaluation, thresholds=(), forecast=True, at=at)
