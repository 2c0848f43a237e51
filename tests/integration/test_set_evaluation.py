"""The set-based evaluation's SQL is held to ``logic``, the single definition of the rules.

For many random scopes (amounts, spends, recent-window spends, period kinds, timezones, instants,
thresholds) the statuses PostgreSQL computes must equal ``logic.evaluate_scope``'s, and the
conditions it lets through ("may hold") must include every condition ``logic.conditions`` finds,
while those it calls sure must really hold: the Python state machine then never misses a move.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costguard.budgets.periods import period_containing
from costguard.db import MONEY_SCALE, transaction
from costguard.evaluation import logic, set_evaluation
from costguard.evaluation.scopes import RecentSpend

UNIT = Decimal(1).scaleb(-MONEY_SCALE)
money = st.decimals(min_value=0, max_value=10**7, places=MONEY_SCALE, allow_nan=False, allow_infinity=False)
amounts = st.decimals(min_value=Decimal("0.01"), max_value=10**7, places=2, allow_nan=False, allow_infinity=False)
scope = st.fixed_dictionaries(
    {
        "amount": amounts,
        "share": st.one_of(money, st.sampled_from([Decimal("0.5"), Decimal("0.8"), Decimal("1"), Decimal("1.2")])),
        "short": st.one_of(money, st.decimals(min_value=0, max_value=1, places=4)),
        "long_extra": st.one_of(money, st.decimals(min_value=0, max_value=1, places=4)),
        "kind": st.sampled_from(["daily", "weekly", "monthly", "quarterly"]),
        "zone": st.sampled_from(["UTC", "Asia/Kolkata", "America/New_York"]),
        "thresholds": st.lists(st.sampled_from([0.5, 0.8, 0.9, 0.75, 1.2]), max_size=3, unique=True),
        "forecast": st.booleans(),
        "offset": st.integers(min_value=0, max_value=100 * 86400),
        "on_period_start": st.booleans(),
    }
)


def _case(i: int, data: dict) -> tuple[set_evaluation.PlanRow, Decimal, RecentSpend, logic.ScopeEvaluation, datetime]:
    at = datetime(2026, 9, 1, tzinfo=UTC) + timedelta(seconds=data["offset"])
    period = period_containing(data["kind"], ZoneInfo(data["zone"]), at)
    if data["on_period_start"]:
        at = period.start
    amount: Decimal = data["amount"]
    # A share of the amount, so that spends land exactly on thresholds as often as around them.
    share: Decimal = data["share"]
    spend = (amount * share).quantize(UNIT) if share <= 10 else share
    # Recent spends as shares of the amount (burn rates around the alert's edge) or as sums of their own.
    short: Decimal = data["short"] if data["short"] > 1 else (amount * data["short"]).quantize(UNIT)
    extra: Decimal = data["long_extra"] if data["long_extra"] > 1 else (amount * data["long_extra"]).quantize(UNIT)
    long = short + extra
    thresholds = tuple(data["thresholds"])
    plan = set_evaluation.PlanRow(
        budget_id=f"b{i}",
        tenant="t",
        pipeline="*",
        model="*",
        template=False,
        period=period.label,
        period_start=period.start,
        period_end=period.end,
        currency="USD",
        amount=amount,
        thresholds=thresholds,
        labels=tuple(logic.threshold_label(t) for t in thresholds),
        forecast=data["forecast"],
    )
    expected = logic.evaluate_scope(
        period=period,
        at=at,
        amount=amount,
        thresholds=thresholds,
        spend=spend,
        short_window_spend=short,
        long_window_spend=long,
    )
    return plan, spend, RecentSpend(short, long), expected, at


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(scope, min_size=1, max_size=12), at_index=st.integers(min_value=0, max_value=11))
def test_sql_statuses_and_conditions_match_logic(pg, cases, at_index):
    # One instant per example (the SQL judges a cycle as of one instant): every scope uses it.
    base = cases[min(at_index, len(cases) - 1)]
    built = [_case(i, {**data, "offset": base["offset"]}) for i, data in enumerate(cases)]
    at = built[0][4]
    built = [b for b in built if b[4] == at]  # a scope "on its period start" has its own instant
    with transaction(pg.factory) as session:
        judged = set_evaluation.judge(
            session, [b[0] for b in built], [((b[0].budget_id, "t"), b[1], b[2]) for b in built], now=at
        )
    for plan, spend, _recent, expected, _at in built:
        got = judged[(plan.budget_id, "t")]
        assert got.spend == spend
        assert got.utilization == expected.utilization
        assert got.state == expected.state
        # Money is stored with MONEY_SCALE decimals: the forecast agrees to the stored unit.
        assert abs(got.forecast_spend - expected.forecast_spend) <= UNIT
        assert got.forecast_utilization == expected.forecast_utilization
        assert got.burn_rate_short == expected.burn_rate_short
        assert got.burn_rate_long == expected.burn_rate_long
        holding = {
            (c.alertname, c.threshold)
            for c in logic.conditions(expected, thresholds=plan.thresholds, forecast=plan.forecast, at=at)
        }
        assert holding <= set(got.may_hold), (plan, holding, got)
        assert got.surely_holds <= holding, (plan, holding, got)


def test_sql_burn_rate_condition_flips_where_logic_flips(pg):
    # Monthly budget of 1000 with 300 spent at mid-month: the burn-rate alert starts at about 22.6
    # spent in the last 6h (10 in the last hour). A grid across that edge, one scope per step.
    at = datetime(2026, 12, 16, 12, tzinfo=UTC)
    data = {
        "amount": Decimal(1000),
        "share": Decimal("0.3"),
        "kind": "monthly",
        "zone": "UTC",
        "thresholds": [],
        "forecast": False,
        "offset": int((at - datetime(2026, 9, 1, tzinfo=UTC)).total_seconds()),
        "on_period_start": False,
    }
    built = [
        _case(i, {**data, "short": Decimal(10), "long_extra": Decimal(long) / 4 - 10})
        for i, long in enumerate(range(60, 120))
    ]
    with transaction(pg.factory) as session:
        judged = set_evaluation.judge(
            session, [b[0] for b in built], [((b[0].budget_id, "t"), b[1], b[2]) for b in built], now=at
        )
    flips = []
    for plan, _spend, _recent, expected, _at in built:
        holds = any(
            c.alertname == logic.BURN_RATE_HIGH
            for c in logic.conditions(expected, thresholds=(), forecast=False, at=at)
        )
        got = judged[(plan.budget_id, "t")]
        assert ((logic.BURN_RATE_HIGH, "") in got.surely_holds) == holds
        flips.append(holds)
    assert flips[0] is False and flips[-1] is True  # the grid does cross the edge
