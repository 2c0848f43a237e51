"""All SQL of the set-based evaluation on PostgreSQL: every scope judged in the database, few returned.

A cycle over 15,000 scopes cannot afford 15,000 Python evaluations. Here one statement computes
every scope's status from ``budget_spend`` and the recent-window sums (the arithmetic of
``logic.evaluate_scope``, with the period's seconds computed by ``logic.period_clock``), writes
``budget_status`` in one upsert, and returns only the scopes whose alerts may move: a condition
that holds without a steady firing alert, a firing alert whose condition may have ended, pending
hysteresis, a value that moved by the refresh step. Each condition is tested with a margin, so a
float that might round the other way in Python counts as "may move": those scopes are then judged
by ``logic`` and ``alerts.logic`` exactly as on SQLite. ``tests/test_set_evaluation.py`` compares
the statuses with ``logic.evaluate_scope`` for random inputs so that the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from costguard.alerts.logic import FIRING, RESOLVED, VALUE_REFRESH_STEP
from costguard.evaluation import logic
from costguard.evaluation.repository import STATUS_COLUMNS, AlertState
from costguard.evaluation.rollup import RECENT_SQL
from costguard.evaluation.scopes import RecentSpend, ScopeKey

WORK_MEM = "64MB"
# Relative margin of every float comparison: far above one rounding step, far below any real change.
MARGIN = 1e-9
# Every division gets this many decimals (Python's Decimal keeps 28 significant digits): both sides
# then agree to far beyond the 12 decimals money is stored with.
_ONE = "1.0000000000000000000000000000000000000000"


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One budget of the cycle, with what the SQL needs of its spec and period (pure data)."""

    budget_id: str
    tenant: str
    pipeline: str
    model: str
    template: bool
    period: str
    period_start: datetime
    period_end: datetime
    currency: str
    amount: Decimal
    clock: logic.PeriodClock
    time_left: float
    thresholds: tuple[float, ...]
    labels: tuple[str, ...]
    forecast: bool


_PLANS_TABLE = """
CREATE TEMPORARY TABLE IF NOT EXISTS cycle_plans (
    budget_id text PRIMARY KEY, tenant text NOT NULL, pipeline text NOT NULL, model text NOT NULL,
    template boolean NOT NULL, period text NOT NULL, period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL, currency text NOT NULL, amount numeric NOT NULL,
    elapsed numeric NOT NULL, remaining numeric NOT NULL, recent_window numeric NOT NULL,
    length numeric NOT NULL, time_left float8 NOT NULL, thresholds float8[] NOT NULL,
    labels text[] NOT NULL, min_threshold float8, forecast boolean NOT NULL
) ON COMMIT DROP
"""

_EVAL_TABLE = """
CREATE TEMPORARY TABLE IF NOT EXISTS cycle_eval (
    budget_id text NOT NULL, tenant text NOT NULL, period text NOT NULL, spend numeric NOT NULL,
    short numeric NOT NULL, long numeric NOT NULL, utilization float8 NOT NULL, forecast_spend numeric NOT NULL,
    forecast_utilization float8 NOT NULL, burn_rate_short float8 NOT NULL, burn_rate_long float8 NOT NULL,
    state text NOT NULL, PRIMARY KEY (budget_id, tenant)
) ON COMMIT DROP
"""

# The scopes: a specific budget's own tenant; for "*" templates every tenant with spend, recent
# spend or a status already (as ``service._Inputs`` does on the Python path).
_SCOPES = (
    "WITH recent AS ("
    + RECENT_SQL
    + """),
scopes AS (
    SELECT budget_id, tenant FROM cycle_plans WHERE NOT template
    UNION
    SELECT p.budget_id, x.tenant FROM cycle_plans p
    JOIN (SELECT budget_id, tenant FROM budget_spend UNION SELECT budget_id, tenant FROM recent
          UNION SELECT budget_id, tenant FROM budget_status) x ON x.budget_id = p.budget_id
    WHERE p.template
), e AS (
    SELECT s.budget_id, s.tenant, p.period, p.amount, p.elapsed, p.remaining, p.recent_window, p.length,
           p.min_threshold, COALESCE(bs.spend, 0) AS spend, COALESCE(r.short, 0) AS short, COALESCE(r.long, 0) AS long
    FROM scopes s JOIN cycle_plans p ON p.budget_id = s.budget_id
    LEFT JOIN budget_spend bs ON bs.budget_id = s.budget_id AND bs.tenant = s.tenant
    LEFT JOIN recent r ON r.budget_id = s.budget_id AND r.tenant = s.tenant
), """
)

# The arithmetic of ``logic.evaluate_scope`` over a relation ``e`` of scopes with their inputs.
_ARITHMETIC = f"""f AS (
    SELECT e.*,
        CASE WHEN elapsed = 0 OR remaining = 0 THEN spend
             ELSE spend + GREATEST((1 - :weight) * (spend * {_ONE}) / elapsed
                                   + :weight * (long * {_ONE}) / recent_window, 0) * remaining
        END AS forecast
    FROM e
), g AS (
    SELECT f.*,
        CASE WHEN amount = 0 THEN 0 ELSE ((spend * {_ONE}) / amount)::float8 END AS utilization,
        CASE WHEN amount = 0 THEN 0 ELSE ((forecast * {_ONE}) / amount)::float8 END AS forecast_utilization,
        CASE WHEN amount = 0 THEN 0 ELSE ((short * length * {_ONE}) / (:short_s * amount))::float8 END AS burn_short,
        CASE WHEN amount = 0 THEN 0 ELSE ((long * length * {_ONE}) / (:long_s * amount))::float8 END AS burn_long
    FROM f
)
INSERT INTO cycle_eval
SELECT budget_id, tenant, period, spend, short, long, utilization, forecast, forecast_utilization,
       burn_short, burn_long,
       CASE WHEN utilization >= 1 THEN 'exceeded'
            WHEN min_threshold IS NOT NULL AND utilization >= min_threshold THEN 'approaching'
            ELSE 'ok' END
FROM g
"""
_EVALUATE = _SCOPES + _ARITHMETIC

# The same arithmetic over given inputs (for the tests that hold it to ``logic``).
_EVALUATE_GIVEN = (
    """WITH e AS (
    SELECT x.budget_id, x.tenant, p.period, p.amount, p.elapsed, p.remaining, p.recent_window, p.length,
           p.min_threshold, x.spend, x.short, x.long
    FROM unnest(CAST(:budgets AS text[]), CAST(:tenants AS text[]), CAST(:spend AS numeric[]),
                CAST(:short AS numeric[]), CAST(:long AS numeric[])) AS x(budget_id, tenant, spend, short, long)
    JOIN cycle_plans p ON p.budget_id = x.budget_id
), """
    + _ARITHMETIC
)

_UPSERT = f"""
INSERT INTO budget_status ({", ".join(STATUS_COLUMNS)})
SELECT e.budget_id, e.tenant, p.pipeline, p.model, e.period, p.period_start, p.period_end, p.currency, p.amount,
       e.spend, e.utilization, e.forecast_spend, e.forecast_utilization, e.burn_rate_short, e.burn_rate_long,
       e.state, :now
FROM cycle_eval e JOIN cycle_plans p ON p.budget_id = e.budget_id
ON CONFLICT (budget_id, tenant) DO UPDATE SET
{", ".join(f"{name} = EXCLUDED.{name}" for name in STATUS_COLUMNS[2:])}
"""

# Burn-rate condition of ``logic._burning_too_fast`` in float8, loosened (may hold) or tightened
# (surely holds) by the margin.
_BURN = """
    (p.amount - e.spend) > 0 AND p.time_left > 0 AND e.short > 0 AND e.long > 0
    AND (p.amount - e.spend)::float8 / NULLIF(e.burn_rate_short * (p.amount::float8 / p.length::float8), 0)
        < :share * p.time_left * {factor}
    AND (p.amount - e.spend)::float8 / NULLIF(e.burn_rate_long * (p.amount::float8 / p.length::float8), 0)
        < :share * p.time_left * {factor}
"""

# Every condition that may hold (with ``sure`` when it holds beyond the margin), per evaluated scope.
_CONDITIONS = f"""
    SELECT e.budget_id, e.tenant, c.alertname, c.threshold, c.value, c.sure
    FROM cycle_eval e JOIN cycle_plans p ON p.budget_id = e.budget_id
    CROSS JOIN LATERAL (
        SELECT :approaching, u.l, e.utilization, e.utilization >= u.t + :margin
        FROM unnest(p.thresholds, p.labels) AS u(t, l) WHERE e.utilization >= u.t - :margin
        UNION ALL
        SELECT :exceeded, '1', e.utilization, e.utilization >= 1 + :margin WHERE e.utilization >= 1 - :margin
        UNION ALL
        SELECT :forecast, '', e.forecast_utilization, e.forecast_utilization >= 1 + :margin
        WHERE p.forecast AND e.forecast_utilization >= 1 - :margin
        UNION ALL
        SELECT :burn, '', e.burn_rate_short, ({_BURN.format(factor="(1 - :margin)")}) IS TRUE
        WHERE {_BURN.format(factor="(1 + :margin)")}
    ) AS c(alertname, threshold, value, sure)
"""

_CANDIDATES = f"""
WITH conds AS ({_CONDITIONS}), a AS (
    SELECT a.budget_id, a.tenant, a.alertname, a.threshold, a.status, a.pending_flips, a.value
    FROM alerts a JOIN cycle_eval e ON e.budget_id = a.budget_id AND e.tenant = a.tenant AND e.period = a.period
    WHERE a.period_end > :now
), moving AS (
    SELECT DISTINCT COALESCE(c.budget_id, a.budget_id) AS budget_id, COALESCE(c.tenant, a.tenant) AS tenant
    FROM conds c FULL JOIN a
      ON c.budget_id = a.budget_id AND c.tenant = a.tenant AND c.alertname = a.alertname AND c.threshold = a.threshold
    WHERE NOT (
        COALESCE(c.budget_id IS NULL AND a.status = :resolved AND a.pending_flips = 0, false)
        OR COALESCE(c.sure AND a.status = :firing AND a.pending_flips = 0
                    AND abs(c.value - a.value) < :refresh - :margin, false)
    )
)
SELECT e.budget_id, e.tenant, e.spend, e.short, e.long
FROM moving m JOIN cycle_eval e ON e.budget_id = m.budget_id AND e.tenant = m.tenant
ORDER BY e.budget_id, e.tenant
"""

_CANDIDATE_ALERTS = """
SELECT a.{columns} FROM alerts a
WHERE a.period_end > :now
  AND (a.budget_id, a.tenant) IN (SELECT * FROM unnest(CAST(:budgets AS text[]), CAST(:tenants AS text[])))
ORDER BY a.id
"""

# Firing alerts that no scope of this cycle covers (budget gone, tenant gone, period over).
_UNSEEN = """
SELECT a.id FROM alerts a
WHERE a.status = :firing AND a.starts_at <= :now AND NOT (a.budget_id = ANY(CAST(:failed AS text[])))
  AND NOT (a.period_end > :now AND EXISTS (
      SELECT 1 FROM cycle_eval e WHERE e.budget_id = a.budget_id AND e.tenant = a.tenant AND e.period = a.period))
ORDER BY a.id
"""

_STALE = """
DELETE FROM budget_status s
WHERE NOT (s.budget_id = ANY(CAST(:failed AS text[])))
  AND NOT EXISTS (SELECT 1 FROM cycle_eval e WHERE e.budget_id = s.budget_id AND e.tenant = s.tenant)
"""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A scope whose alerts may move: its exact inputs, for ``logic`` to judge in Python."""

    key: ScopeKey
    spend: Decimal
    recent: RecentSpend


@dataclass(frozen=True, slots=True)
class Evaluated:
    scopes: int
    candidates: list[Candidate]


def _condition_params(now: datetime) -> dict[str, object]:
    return {
        "now": now,
        "margin": MARGIN,
        "share": logic.BURN_EXHAUSTION_SHARE,
        "refresh": VALUE_REFRESH_STEP,
        "approaching": logic.APPROACHING,
        "exceeded": logic.EXCEEDED,
        "forecast": logic.FORECAST_EXCEEDED,
        "burn": logic.BURN_RATE_HIGH,
        "firing": FIRING,
        "resolved": RESOLVED,
    }


def _arithmetic_params() -> dict[str, object]:
    return {
        "weight": logic.RECENT_PACE_WEIGHT,
        "short_s": Decimal(str(logic.SHORT_WINDOW.total_seconds())),
        "long_s": Decimal(str(logic.LONG_WINDOW.total_seconds())),
    }


def evaluate(session: Session, plans: Sequence[PlanRow], *, now: datetime) -> Evaluated:
    """Write every scope's status and return the scopes whose alerts may move (after ``rollup.sync``)."""
    # The recent-window GROUPING SETS over tens of thousands of rollup rows spill to disk at the
    # default 4MB; this transaction only.
    session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    _load_plans(session, plans)
    session.execute(text(_EVAL_TABLE))
    session.execute(text("TRUNCATE cycle_eval"))
    session.execute(
        text(_EVALUATE),
        {
            "short": now - logic.SHORT_WINDOW,
            "long": now - logic.LONG_WINDOW,
            "now": now,
            **_arithmetic_params(),
        },
    )
    session.execute(text("ANALYZE cycle_eval"))
    session.execute(text(_UPSERT), {"now": now})
    scopes = session.execute(text("SELECT count(*) FROM cycle_eval")).scalar_one()
    rows = session.execute(text(_CANDIDATES), _condition_params(now))
    candidates = [
        Candidate((b, t), Decimal(spend), RecentSpend(Decimal(short), Decimal(long)))
        for b, t, spend, short, long in rows
    ]
    return Evaluated(int(scopes), candidates)


def _load_plans(session: Session, plans: Sequence[PlanRow]) -> None:
    session.execute(text(_PLANS_TABLE))
    session.execute(text("TRUNCATE cycle_plans"))
    raw = session.connection().connection.driver_connection
    assert raw is not None
    columns = (
        "budget_id, tenant, pipeline, model, template, period, period_start, period_end, currency, amount,"
        " elapsed, remaining, recent_window, length, time_left, thresholds, labels, min_threshold, forecast"
    )
    with raw.cursor() as cursor, cursor.copy(f"COPY cycle_plans ({columns}) FROM STDIN") as copy:
        for p in plans:
            copy.write_row(
                (
                    p.budget_id,
                    p.tenant,
                    p.pipeline,
                    p.model,
                    p.template,
                    p.period,
                    p.period_start,
                    p.period_end,
                    p.currency,
                    p.amount,
                    p.clock.elapsed,
                    p.clock.remaining,
                    p.clock.recent_window,
                    p.clock.length,
                    p.time_left,
                    list(p.thresholds),
                    list(p.labels),
                    min(p.thresholds) if p.thresholds else None,
                    p.forecast,
                )
            )
    session.execute(text("ANALYZE cycle_plans"))


def candidate_alerts(session: Session, keys: Sequence[ScopeKey], *, now: datetime) -> list[AlertState]:
    """The open-period alerts of the candidate scopes (what ``_alert_moves`` compares with)."""
    if not keys:
        return []
    columns = ", a.".join(AlertState.__slots__)
    rows = session.execute(
        text(_CANDIDATE_ALERTS.format(columns=columns)),
        {"now": now, "budgets": [k[0] for k in keys], "tenants": [k[1] for k in keys]},
    )
    return [AlertState(*row) for row in rows]


def unseen_firing(session: Session, *, now: datetime, failed: Sequence[str]) -> list[int]:
    return list(session.scalars(text(_UNSEEN), {"firing": FIRING, "now": now, "failed": list(failed)}))


def delete_stale_statuses(session: Session, *, failed: Sequence[str]) -> None:
    session.execute(text(_STALE), {"failed": list(failed)})


@dataclass(frozen=True, slots=True)
class Judged:
    """What the SQL makes of one scope: its status columns and the conditions that may / surely hold."""

    spend: Decimal
    utilization: float
    forecast_spend: Decimal
    forecast_utilization: float
    burn_rate_short: float
    burn_rate_long: float
    state: str
    may_hold: dict[tuple[str, str], float]
    surely_holds: set[tuple[str, str]]


def judge(
    session: Session,
    plans: Sequence[PlanRow],
    inputs: Sequence[tuple[ScopeKey, Decimal, RecentSpend]],
    *,
    now: datetime,
) -> dict[ScopeKey, Judged]:
    """Run the evaluation's SQL over given inputs (no rollups): lets tests hold it to ``logic``."""
    _load_plans(session, plans)
    session.execute(text(_EVAL_TABLE))
    session.execute(text("TRUNCATE cycle_eval"))
    session.execute(
        text(_EVALUATE_GIVEN),
        {
            "budgets": [key[0] for key, _s, _r in inputs],
            "tenants": [key[1] for key, _s, _r in inputs],
            "spend": [spend for _k, spend, _r in inputs],
            "short": [recent.short_window for _k, _s, recent in inputs],
            "long": [recent.long_window for _k, _s, recent in inputs],
            **_arithmetic_params(),
        },
    )
    conditions: dict[ScopeKey, list[tuple[str, str, float, bool]]] = {}
    for b, t, alertname, threshold, value, sure in session.execute(text(_CONDITIONS), _condition_params(now)):
        conditions.setdefault((b, t), []).append((alertname, threshold, value, sure))
    columns = "budget_id, tenant, spend, utilization, forecast_spend, forecast_utilization, burn_rate_short,"
    found: dict[ScopeKey, Judged] = {}
    rows = session.execute(text(f"SELECT {columns} burn_rate_long, state FROM cycle_eval"))
    for b, t, spend, utilization, forecast, forecast_utilization, burn_short, burn_long, state in rows:
        conds = conditions.get((b, t), [])
        found[(b, t)] = Judged(
            spend=Decimal(spend),
            utilization=utilization,
            forecast_spend=Decimal(forecast),
            forecast_utilization=forecast_utilization,
            burn_rate_short=burn_short,
            burn_rate_long=burn_long,
            state=state,
            may_hold={(c[0], c[1]): c[2] for c in conds},
            surely_holds={(c[0], c[1]) for c in conds if c[3]},
        )
    return found
