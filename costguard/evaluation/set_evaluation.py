"""All SQL of the set-based evaluation on PostgreSQL: every scope judged in the database, few returned.

A cycle over 15,000 scopes cannot afford 15,000 Python evaluations. Here one statement computes
every scope's status from ``budget_spend`` and the recent-window sums (the arithmetic of
``logic.evaluate_scope``, with the period's seconds computed by ``logic.period_clock``), writes
them to ``budget_status`` in two set-based statements, and returns only the scopes whose alerts
may move: a condition that holds without a steady firing alert, a firing alert whose condition may
have ended, pending hysteresis, a value that moved by the refresh step. Each condition is tested
with a margin, so a float that might round the other way in Python counts as "may move": those
scopes are then judged by ``logic`` and ``alerts.logic`` exactly as on SQLite.
``tests/test_set_evaluation.py`` compares the statuses with ``logic.evaluate_scope`` for random
inputs so that the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, text
from sqlalchemy.orm import Session

from costguard.alerts.logic import FIRING, RESOLVED, VALUE_REFRESH_STEP
from costguard.evaluation import logic
from costguard.evaluation.models import BudgetPlan
from costguard.evaluation.repository import STATUS_COLUMNS, AlertState
from costguard.evaluation.scopes import RecentSpend, ScopeKey

_CHUNK = 1000
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
    thresholds: tuple[float, ...]
    labels: tuple[str, ...]
    forecast: bool

    def as_row(self) -> tuple[object, ...]:
        """The ``budget_plans`` row, in its column order."""
        return (
            self.budget_id,
            self.tenant,
            self.pipeline,
            self.model,
            self.template,
            self.period,
            self.period_start,
            self.period_end,
            self.currency,
            self.amount,
            list(self.thresholds),
            list(self.labels),
            min(self.thresholds) if self.thresholds else None,
            self.forecast,
        )


_PLAN_COLUMNS = tuple(column.name for column in BudgetPlan.__table__.columns)

# The stored plans with the clock of the cycle's instant, in exact seconds as ``logic.period_clock``
# computes them in Python (``time_left`` as the float ``(end - at).total_seconds()``).
_PLANS = """(
    SELECT bp.*,
           GREATEST(EXTRACT(EPOCH FROM LEAST(CAST(:now AS timestamptz), period_end) - period_start), 0) AS elapsed,
           GREATEST(EXTRACT(EPOCH FROM period_end - GREATEST(CAST(:now AS timestamptz), period_start)), 0)
               AS remaining,
           EXTRACT(EPOCH FROM period_end - period_start) AS length,
           EXTRACT(EPOCH FROM period_end - CAST(:now AS timestamptz))::float8 AS time_left
    FROM budget_plans bp
)"""

# Each evaluated scope with what the later statements need of its plan, so they read this alone.
_EVAL_TABLE = """
CREATE TEMPORARY TABLE IF NOT EXISTS cycle_eval (
    budget_id text NOT NULL, tenant text NOT NULL, pipeline text NOT NULL, model text NOT NULL,
    period text NOT NULL, period_start timestamptz NOT NULL, period_end timestamptz NOT NULL,
    currency text NOT NULL, amount numeric NOT NULL, length numeric NOT NULL, time_left float8 NOT NULL,
    thresholds float8[] NOT NULL, labels text[] NOT NULL, forecast boolean NOT NULL,
    spend numeric NOT NULL, short numeric NOT NULL, long numeric NOT NULL, utilization float8 NOT NULL,
    forecast_spend numeric NOT NULL, forecast_utilization float8 NOT NULL, burn_rate_short float8 NOT NULL,
    burn_rate_long float8 NOT NULL, state text NOT NULL
) ON COMMIT DROP
"""

# What the arithmetic and the later statements need of each scope's plan.
_PLAN_FIELDS = (
    "p.pipeline, p.model, p.period, p.period_start, p.period_end, p.currency, p.amount, p.elapsed, p.remaining,"
    " CAST(:long_s AS numeric) AS recent_window, p.length, p.time_left, p.thresholds, p.labels,"
    " p.min_threshold, p.forecast AS forecast_enabled"
)

# The scopes: a specific budget's own tenant; for "*" templates every tenant with spend, recent
# spend or a status already (as ``service._Inputs`` does on the Python path).
_SCOPES = (
    """WITH recent AS (
    SELECT budget_id, tenant, short_window AS short, long_window AS long FROM budget_window_spend
),
p AS MATERIALIZED """
    + _PLANS
    + """,
scopes AS (
    SELECT budget_id, tenant FROM budget_plans WHERE NOT template
    UNION
    SELECT p.budget_id, x.tenant FROM budget_plans p
    JOIN (SELECT budget_id, tenant FROM budget_spend UNION SELECT budget_id, tenant FROM recent
          UNION SELECT budget_id, tenant FROM budget_status) x ON x.budget_id = p.budget_id
    WHERE p.template
), e AS (
    SELECT s.budget_id, s.tenant, """
    + _PLAN_FIELDS
    + """, COALESCE(bs.spend, 0) AS spend, COALESCE(r.short, 0) AS short, COALESCE(r.long, 0) AS long
    FROM scopes s JOIN p ON p.budget_id = s.budget_id
    LEFT JOIN budget_spend bs ON bs.budget_id = s.budget_id AND bs.tenant = s.tenant
    LEFT JOIN recent r ON r.budget_id = s.budget_id AND r.tenant = s.tenant
), """
)

# The arithmetic of ``logic.evaluate_scope`` over a relation ``e`` of scopes with their inputs.
# Each value is computed once, in a LATERAL subquery that OFFSET 0 keeps the planner from
# flattening: inlined, the forecast would be computed twice and the utilization three times.
_ARITHMETIC = f"""f AS (
    SELECT e.*, x.forecast
    FROM e CROSS JOIN LATERAL (
        SELECT CASE WHEN elapsed = 0 OR remaining = 0 THEN spend
                    ELSE spend + GREATEST((1 - :weight) * (spend * {_ONE}) / elapsed
                                          + :weight * (long * {_ONE}) / recent_window, 0) * remaining
               END AS forecast
        OFFSET 0
    ) AS x
), g AS (
    SELECT f.*, x.*
    FROM f CROSS JOIN LATERAL (
        SELECT
            CASE WHEN amount = 0 THEN 0 ELSE ((spend * {_ONE}) / amount)::float8 END AS utilization,
            CASE WHEN amount = 0 THEN 0 ELSE ((forecast * {_ONE}) / amount)::float8 END AS forecast_utilization,
            CASE WHEN amount = 0 THEN 0 ELSE ((short * length * {_ONE}) / (:short_s * amount))::float8 END
                AS burn_short,
            CASE WHEN amount = 0 THEN 0 ELSE ((long * length * {_ONE}) / (:long_s * amount))::float8 END
                AS burn_long
        OFFSET 0
    ) AS x
)
INSERT INTO cycle_eval
SELECT budget_id, tenant, pipeline, model, period, period_start, period_end, currency, amount, length, time_left,
       thresholds, labels, forecast_enabled, spend, short, long, utilization, forecast, forecast_utilization,
       burn_short, burn_long,
       CASE WHEN utilization >= 1 THEN 'exceeded'
            WHEN min_threshold IS NOT NULL AND utilization >= min_threshold THEN 'approaching'
            ELSE 'ok' END
FROM g
"""
_EVALUATE = _SCOPES + _ARITHMETIC

# The same arithmetic over given inputs (for the tests that hold it to ``logic``).
_EVALUATE_GIVEN = (
    "WITH p AS "
    + _PLANS
    + """, e AS (
    SELECT x.budget_id, x.tenant, """
    + _PLAN_FIELDS
    + """, x.spend, x.short, x.long
    FROM unnest(CAST(:budgets AS text[]), CAST(:tenants AS text[]), CAST(:spend AS numeric[]),
                CAST(:short AS numeric[]), CAST(:long AS numeric[])) AS x(budget_id, tenant, spend, short, long)
    JOIN p ON p.budget_id = x.budget_id
), """
    + _ARITHMETIC
)

# Every evaluated scope's status: an UPDATE joined to the evaluation for the scopes that have one
# (half the time of INSERT … ON CONFLICT, which probes the key and attempts an insert per row),
# then an INSERT for the new ones. Only the worker holding the cycle's guard writes statuses.
_EVALUATED = STATUS_COLUMNS[2:-1]  # what cycle_eval holds of a status, under the same names
_UPDATE_STATUSES = f"""
UPDATE budget_status s SET {", ".join(f"{name} = e.{name}" for name in _EVALUATED)}, evaluated_at = :now
FROM cycle_eval e
WHERE s.budget_id = e.budget_id AND s.tenant = e.tenant
"""
_INSERT_STATUSES = f"""
INSERT INTO budget_status ({", ".join(STATUS_COLUMNS)})
SELECT budget_id, tenant, {", ".join(_EVALUATED)}, :now
FROM cycle_eval e
WHERE NOT EXISTS (SELECT 1 FROM budget_status s WHERE s.budget_id = e.budget_id AND s.tenant = e.tenant)
"""

# Burn-rate condition of ``logic._burning_too_fast`` in float8, loosened (may hold) or tightened
# (surely holds) by the margin.
_BURN = """
    (e.amount - e.spend) > 0 AND e.time_left > 0 AND e.short > 0 AND e.long > 0
    AND (e.amount - e.spend)::float8 / NULLIF(e.burn_rate_short * (e.amount::float8 / e.length::float8), 0)
        < :share * e.time_left * {factor}
    AND (e.amount - e.spend)::float8 / NULLIF(e.burn_rate_long * (e.amount::float8 / e.length::float8), 0)
        < :share * e.time_left * {factor}
"""

# Every condition that may hold (with ``sure`` when it holds beyond the margin), per evaluated scope.
_CONDITIONS = f"""
    SELECT e.budget_id, e.tenant, c.alertname, c.threshold, c.value, c.sure
    FROM cycle_eval e
    CROSS JOIN LATERAL (
        SELECT :approaching, u.l, e.utilization, e.utilization >= u.t + :margin
        FROM unnest(e.thresholds, e.labels) AS u(t, l) WHERE e.utilization >= u.t - :margin
        UNION ALL
        SELECT :exceeded, '1', e.utilization, e.utilization >= 1 + :margin WHERE e.utilization >= 1 - :margin
        UNION ALL
        SELECT :forecast, '', e.forecast_utilization, e.forecast_utilization >= 1 + :margin
        WHERE e.forecast AND e.forecast_utilization >= 1 - :margin
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

# Statuses no budget scope has any more (budget gone, or a specific budget's tenant changed): a
# template's scopes include every tenant with a status, so only these are left unevaluated.
_STALE = """
DELETE FROM budget_status s
WHERE NOT (s.budget_id = ANY(CAST(:failed AS text[])))
  AND NOT EXISTS (SELECT 1 FROM budget_plans p WHERE p.budget_id = s.budget_id AND (p.template OR p.tenant = s.tenant))
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


# What this process last left in each database's budget_plans, with the table's row versions
# then: when neither changed, a cycle need not read the table back to compare.
_STORED: dict[str, tuple[tuple[Any, ...], Sequence[PlanRow]]] = {}
_VERSIONS = "SELECT count(*), max(xmin::text::bigint) FROM budget_plans"


def store_plans(session: Session, plans: Sequence[PlanRow]) -> int:
    """Make ``budget_plans`` hold exactly these plans, writing only the rows that differ; returns how many."""
    database = str(session.get_bind().engine.url)
    versions = tuple(session.execute(text(_VERSIONS)).one())
    last = _STORED.get(database)
    if last is not None and last[0] == versions and _same(last[1], plans):
        return 0
    written = _write_plans(session, plans)
    if len(_STORED) >= 16:
        _STORED.clear()
    _STORED[database] = (tuple(session.execute(text(_VERSIONS)).one()), list(plans))
    return written


def _same(before: Sequence[PlanRow], now: Sequence[PlanRow]) -> bool:
    # Plans are cached objects: the same budget in the same period is the very same object.
    return len(before) == len(now) and all(a is b for a, b in zip(before, now, strict=True))


def _write_plans(session: Session, plans: Sequence[PlanRow]) -> int:
    # Straight from the driver: the ORM's per-element array and time processing cost more than the rest.
    with _driver(session).cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(_PLAN_COLUMNS)} FROM budget_plans")
        stored = {row[0]: row for row in cursor}
    wanted = {plan.budget_id: plan.as_row() for plan in plans}
    changed = [row for budget_id, row in wanted.items() if stored.get(budget_id) != row]
    outdated = [budget_id for budget_id in stored if budget_id not in wanted or stored[budget_id] != wanted[budget_id]]
    for start in range(0, len(outdated), _CHUNK):
        session.execute(delete(BudgetPlan).where(BudgetPlan.budget_id.in_(outdated[start : start + _CHUNK])))
    if changed:
        session.execute(insert(BudgetPlan), [dict(zip(_PLAN_COLUMNS, row, strict=True)) for row in changed])
    if outdated or changed:
        # Autovacuum would gather them minutes later: every join of this cycle needs them now.
        session.execute(text("ANALYZE budget_plans"))
    return len(set(outdated) | {row[0] for row in changed})


def _driver(session: Session) -> Any:
    return session.connection().connection.driver_connection


def evaluate(session: Session, *, now: datetime) -> Evaluated:
    """Write every scope's status; return the scopes whose alerts may move (run store_plans, rollup.sync first)."""
    session.execute(text(_EVAL_TABLE))
    session.execute(text("TRUNCATE cycle_eval"))
    session.execute(
        text(_EVALUATE),
        {"now": now, **_arithmetic_params()},
    )
    session.execute(text(_UPDATE_STATUSES), {"now": now})
    session.execute(text(_INSERT_STATUSES), {"now": now})
    scopes = session.execute(text("SELECT count(*) FROM cycle_eval")).scalar_one()
    rows = session.execute(text(_CANDIDATES), _condition_params(now))
    candidates = [
        Candidate((b, t), Decimal(spend), RecentSpend(Decimal(short), Decimal(long)))
        for b, t, spend, short, long in rows
    ]
    return Evaluated(int(scopes), candidates)


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
    """Run the evaluation's SQL over given inputs (no rollups): lets tests hold it to ``logic``.

    The plans are stored in a savepoint that is rolled back at the end: the worker's own plans stay.
    """
    savepoint = session.begin_nested()
    try:
        return _judge(session, plans, inputs, now=now)
    finally:
        savepoint.rollback()


def _judge(
    session: Session,
    plans: Sequence[PlanRow],
    inputs: Sequence[tuple[ScopeKey, Decimal, RecentSpend]],
    *,
    now: datetime,
) -> dict[ScopeKey, Judged]:
    store_plans(session, plans)
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
            "now": now,
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
