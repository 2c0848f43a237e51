"""All SQL of the worker's aggregation: fold new usage into rollups and per-budget period spend.

A cycle never sums the history. Each budget keeps its period-to-date spend per tenant in
``budget_spend``; the fold adds every new delta (a pending delta, or the sums of a new batch of
the fast ingest path) to the rollups *and* to the spend of every budget whose scope and current
period cover it. A budget whose scope or period changed (created, edited, period rolled over)
is rebuilt once from the rollups first.

SQLite cannot add decimals exactly (its NUMERIC is a float), so there the same results are
computed in Python from the exact text values (``rollup_python``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from costguard.evaluation import rollup_python
from costguard.evaluation.logic import LONG_WINDOW, SHORT_WINDOW
from costguard.evaluation.models import (
    BudgetSpend,
    BudgetSpendBasis,
    BudgetWindowBasis,
    BudgetWindowSpend,
    BudgetWindowState,
)
from costguard.evaluation.scopes import BudgetWindow, RecentSpend, ScopeKey
from costguard.usage.models import BUCKET_SECONDS
from costguard.usage.repository import sum_batches

WORK_MEM = "64MB"

# Every (budget, tenant) a row of a source counts for: a specific budget through its tenant (a
# hash join), a "*" template through every tenant (few templates: a nested loop), each then
# checked on pipeline and model ("*" takes any). The caller sums the matches per (budget, tenant).
_MATCH = """
    SELECT b.budget_id, s.tenant, {columns} FROM budget_plans b
    JOIN {source} s ON b.tenant <> '*' AND s.tenant = b.tenant {extra}
    WHERE (b.pipeline = '*' OR b.pipeline = s.pipeline) AND (b.model = '*' OR b.model = s.model)
    UNION ALL
    SELECT b.budget_id, s.tenant, {columns} FROM budget_plans b
    JOIN {source} s ON b.tenant = '*' {extra}
    WHERE (b.pipeline = '*' OR b.pipeline = s.pipeline) AND (b.model = '*' OR b.model = s.model)
"""

# What a cycle moves per budget scope, from the window slide and from the fold, collected first
# and added to ``budget_spend`` and ``budget_window_spend`` once at the end: one write per scope
# and table, where a write per source cost as much again. NULL: nothing for that column.
_SCOPE_MOVED_TABLE = """
CREATE TEMPORARY TABLE IF NOT EXISTS cycle_scope_moved (
    budget_id text NOT NULL, tenant text NOT NULL, spend numeric, short_window numeric, long_window numeric
) ON COMMIT DROP
"""

_BACKFILL_POSTGRES = text(
    "WITH r AS (SELECT tenant, pipeline, model, SUM(cost) AS cost FROM usage_rollups"
    " WHERE bucket_start >= :start AND bucket_start < :end GROUP BY tenant, pipeline, model)"
    " INSERT INTO budget_spend (budget_id, tenant, spend) SELECT budget_id, tenant, SUM(cost) FROM ("
    + _MATCH.format(
        source="r",
        columns="s.cost",
        extra="AND b.budget_id = ANY(CAST(:stale AS text[])) AND b.period_start = :start AND b.period_end = :end",
    )
    + ") AS matched GROUP BY budget_id, tenant"
)

# The fold, in one transaction: every committed delta is taken out of the pending table into
# ``cycle_moved`` (a delta committed meanwhile waits for the next cycle), with the sums of every
# committed batch of the fast ingest path (``usage_batches``), then added to the
# rollups, the totals, the period spend and the window spend. Separate statements over a temp
# table: as data-modifying CTEs of one statement sharing the DELETE's output, the same work took
# two to three times as long.
_MOVED_TABLE = """
CREATE TEMPORARY TABLE IF NOT EXISTS cycle_moved (
    tenant text NOT NULL, pipeline text NOT NULL, model text NOT NULL, bucket_start timestamptz NOT NULL,
    kind text NOT NULL, cost numeric NOT NULL, records bigint NOT NULL
) ON COMMIT DROP
"""
_TAKE_PENDING = [
    text(_MOVED_TABLE),
    text("TRUNCATE cycle_moved"),
    text(
        """
        WITH moved AS (
            DELETE FROM usage_rollup_pending RETURNING tenant, pipeline, model, bucket_start, kind, cost, records
        )
        INSERT INTO cycle_moved SELECT * FROM moved
        """
    ),
]
# The committed batches of the fast ingest path, taken out like the deltas (a batch committed
# meanwhile waits for the next cycle, its records with it).
_TAKE_BATCHES = text("DELETE FROM usage_batches RETURNING id")
_FOLD_POSTGRES = [
    # The pending table is emptied by every fold, so its statistics (gathered whenever autovacuum
    # passes) often say "no rows" while thousands wait; planned on that, matching them to the
    # budgets ran in nested loops, 4,000 times slower. The moved rows' own statistics are exact.
    text("ANALYZE cycle_moved"),
    text(
        """
        INSERT INTO usage_rollups AS r (tenant, bucket_start, pipeline, model, kind, cost, records)
        SELECT tenant, bucket_start, pipeline, model, kind, SUM(cost), SUM(records)
        FROM cycle_moved GROUP BY tenant, bucket_start, pipeline, model, kind
        ON CONFLICT (tenant, bucket_start, pipeline, model, kind)
        DO UPDATE SET cost = r.cost + EXCLUDED.cost, records = r.records + EXCLUDED.records
        """
    ),
    text(
        """
        INSERT INTO usage_totals AS t (tenant, pipeline, model, kind, cost, records, last_timestamp)
        SELECT tenant, pipeline, model, kind, SUM(cost), SUM(records), MAX(bucket_start)
        FROM cycle_moved GROUP BY tenant, pipeline, model, kind
        ON CONFLICT (tenant, pipeline, model, kind)
        DO UPDATE SET cost = t.cost + EXCLUDED.cost, records = t.records + EXCLUDED.records,
                      last_timestamp = GREATEST(t.last_timestamp, EXCLUDED.last_timestamp)
        """
    ),
    # Each delta matched to the budgets once, for the period spend and both windows at a time.
    text(
        """
        WITH d AS (
            SELECT tenant, bucket_start, pipeline, model, SUM(cost) AS cost
            FROM cycle_moved GROUP BY tenant, bucket_start, pipeline, model
        )
        INSERT INTO cycle_scope_moved (budget_id, tenant, spend, short_window, long_window)
        SELECT budget_id, tenant,
               SUM(cost) FILTER (WHERE bucket_start >= period_start AND bucket_start < period_end),
               SUM(cost) FILTER (WHERE bucket_start >= :short_start AND bucket_start < :window_end),
               SUM(cost) FILTER (WHERE bucket_start >= :long_start AND bucket_start < :window_end)
        FROM ("""
        + _MATCH.format(source="d", columns="s.cost, s.bucket_start, b.period_start, b.period_end", extra="")
        + """) AS matched GROUP BY budget_id, tenant
        """
    ),
    text(
        """
        INSERT INTO budget_spend AS s (budget_id, tenant, spend)
        SELECT budget_id, tenant, SUM(spend) FROM cycle_scope_moved WHERE spend IS NOT NULL
        GROUP BY budget_id, tenant
        ON CONFLICT (budget_id, tenant) DO UPDATE SET spend = s.spend + EXCLUDED.spend
        """
    ),
    text(
        """
        INSERT INTO budget_window_spend AS w (budget_id, tenant, short_window, long_window)
        SELECT budget_id, tenant, COALESCE(SUM(short_window), 0), COALESCE(SUM(long_window), 0)
        FROM cycle_scope_moved WHERE short_window IS NOT NULL OR long_window IS NOT NULL
        GROUP BY budget_id, tenant
        ON CONFLICT (budget_id, tenant) DO UPDATE SET short_window = w.short_window + EXCLUDED.short_window,
                                                      long_window = w.long_window + EXCLUDED.long_window
        """
    ),
]
_FOLDED = text("SELECT COALESCE(SUM(records), 0) FROM cycle_moved")

# The burn-rate windows of budgets whose scope is new to them (or too far from their last end),
# summed from the rollups before this cycle's fold: [end - long, end) and [end - short, end).
_REBUILD_WINDOWS = text(
    "WITH w AS (SELECT tenant, pipeline, model,"
    " COALESCE(SUM(cost) FILTER (WHERE bucket_start >= :short_start), 0) AS short, SUM(cost) AS long"
    " FROM usage_rollups WHERE bucket_start >= :long_start AND bucket_start < :window_end"
    " GROUP BY tenant, pipeline, model)"
    " INSERT INTO budget_window_spend (budget_id, tenant, short_window, long_window)"
    " SELECT budget_id, tenant, SUM(short), SUM(long) FROM ("
    + _MATCH.format(source="w", columns="s.short, s.long", extra="AND b.budget_id = ANY(CAST(:ids AS text[]))")
    + ") AS m GROUP BY budget_id, tenant HAVING SUM(short) <> 0 OR SUM(long) <> 0"
)

# Slide the windows of every budget not rebuilt this cycle from :old_end to :window_end: buckets
# in [old_end, window_end) enter both, buckets that fall behind each window's new start leave it
# (a bucket that enters and leaves within one slide nets to zero). Each range is its own index
# scan. Read before this cycle's fold, whose new deltas are matched to the windows by the fold.
_SLIDE_WINDOWS = text(
    """
    WITH moved AS (
        SELECT tenant, pipeline, model, SUM(entering) AS entering, SUM(leaving_short) AS leaving_short,
               SUM(leaving_long) AS leaving_long
        FROM (
            SELECT tenant, pipeline, model, cost AS entering, 0 AS leaving_short, 0 AS leaving_long
            FROM usage_rollups WHERE bucket_start >= :old_end AND bucket_start < :window_end
            UNION ALL
            SELECT tenant, pipeline, model, 0, cost, 0
            FROM usage_rollups WHERE bucket_start >= :old_short AND bucket_start < :short_start
            UNION ALL
            SELECT tenant, pipeline, model, 0, 0, cost
            FROM usage_rollups WHERE bucket_start >= :old_long AND bucket_start < :long_start
        ) AS ranges
        GROUP BY tenant, pipeline, model
    )
    INSERT INTO cycle_scope_moved (budget_id, tenant, short_window, long_window)
    SELECT budget_id, tenant, SUM(entering - leaving_short), SUM(entering - leaving_long) FROM ("""
    + _MATCH.format(
        source="moved",
        columns="s.entering, s.leaving_short, s.leaving_long",
        extra="AND NOT (b.budget_id = ANY(CAST(:rebuilt AS text[])))",
    )
    + ") AS m GROUP BY budget_id, tenant"
)

_DROP_EMPTY_WINDOWS = text("DELETE FROM budget_window_spend WHERE short_window = 0 AND long_window = 0")
WINDOWS = "windows"


def window_end(now: datetime) -> datetime:
    """The first bucket start not before ``now``.

    A bucket is in the windows as of ``now`` exactly when it is in ``[window_end - length,
    window_end)``: the windows only move when a bucket boundary passes.
    """
    floor = datetime.fromtimestamp(now.timestamp() // BUCKET_SECONDS * BUCKET_SECONDS, UTC)
    return floor if floor == now else floor + timedelta(seconds=BUCKET_SECONDS)


@dataclass(frozen=True, slots=True)
class SyncReport:
    folded_records: int
    rebuilt_budgets: int
    folded_batches: int = 0


def sync(session: Session, windows: Sequence[BudgetWindow], *, now: datetime) -> SyncReport:
    """Rebuild budgets whose basis changed, then fold every committed pending delta; returns what was done.

    On PostgreSQL the budgets' scopes and periods are read from ``budget_plans``, which must hold
    these windows' budgets (``set_evaluation.store_plans`` in the same transaction).
    """
    stored = {b: basis for b, basis in session.execute(select(BudgetSpendBasis.budget_id, BudgetSpendBasis.basis))}
    current = {w.budget_id for w in windows}
    gone = [budget_id for budget_id in stored if budget_id not in current]
    stale = [w for w in windows if stored.get(w.budget_id) != w.basis]
    for chunk in _chunks([*gone, *(w.budget_id for w in stale)]):
        session.execute(delete(BudgetSpend).where(BudgetSpend.budget_id.in_(chunk)))
        session.execute(delete(BudgetSpendBasis).where(BudgetSpendBasis.budget_id.in_(chunk)))
    if stale:
        session.execute(insert(BudgetSpendBasis), [{"budget_id": w.budget_id, "basis": w.basis} for w in stale])
    if session.get_bind().dialect.name != "postgresql":
        rollup_python.rebuild(session, stale)
        return SyncReport(rollup_python.fold(session, windows), len(stale))
    # The sums of the rebuilds, the window slide and the fold, over tens of thousands of rows,
    # spill to disk at the default 4MB. And the row counts of the last hours of rollups are far
    # above what the statistics (gathered before) promise, which makes the planner sort both sides
    # of a merge join: hash joins are right for every join of the cycle. This transaction only.
    session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    session.execute(text("SET LOCAL enable_mergejoin = off"))
    stale_ids = [w.budget_id for w in stale]
    for period_start, period_end in sorted({(w.period_start, w.period_end) for w in stale}):
        session.execute(_BACKFILL_POSTGRES, {"start": period_start, "end": period_end, "stale": stale_ids})
    end = window_end(now)
    bounds = {"window_end": end, "short_start": end - SHORT_WINDOW, "long_start": end - LONG_WINDOW}
    session.execute(text(_SCOPE_MOVED_TABLE))
    session.execute(text("TRUNCATE cycle_scope_moved"))
    slid = _move_windows(session, windows, bounds=bounds)
    for statement in _TAKE_PENDING:
        session.execute(statement)
    batches = list(session.scalars(_TAKE_BATCHES))
    if batches:
        sum_batches(session, batches, into="cycle_moved")
    for statement in _FOLD_POSTGRES:
        session.execute(statement, bounds)
    if slid:
        session.execute(_DROP_EMPTY_WINDOWS)
    folded = session.execute(_FOLDED).scalar_one()
    return SyncReport(int(folded), len(stale), len(batches))


def _move_windows(session: Session, windows: Sequence[BudgetWindow], *, bounds: dict[str, datetime]) -> bool:
    """Bring every budget's window spend to ``bounds["window_end"]`` (before the fold): rebuild or slide.

    A rebuild is written at once; a slide is left in ``cycle_scope_moved`` for the fold to add
    (returns True then).
    """
    end = bounds["window_end"]
    state = session.get(BudgetWindowState, WINDOWS)
    stored = dict(session.execute(select(BudgetWindowBasis.budget_id, BudgetWindowBasis.basis)).all())
    restart = state is None or not state.window_end <= end < state.window_end + LONG_WINDOW
    if restart:
        # First cycle, a cycle back in time, or idle longer than the long window: start over.
        session.execute(delete(BudgetWindowSpend))
        session.execute(delete(BudgetWindowBasis))
        stored = {}
    current = {w.budget_id: w.scope_basis for w in windows}
    rebuild = [budget_id for budget_id, basis in current.items() if stored.get(budget_id) != basis]
    reset = [*rebuild, *(budget_id for budget_id in stored if budget_id not in current)]
    for chunk in _chunks(reset):
        session.execute(delete(BudgetWindowSpend).where(BudgetWindowSpend.budget_id.in_(chunk)))
        session.execute(delete(BudgetWindowBasis).where(BudgetWindowBasis.budget_id.in_(chunk)))
    if rebuild:
        session.execute(_REBUILD_WINDOWS, {**bounds, "ids": rebuild})
        session.execute(insert(BudgetWindowBasis), [{"budget_id": b, "basis": current[b]} for b in rebuild])
    slid = False
    if state is None:
        session.add(BudgetWindowState(name=WINDOWS, window_end=end))
    else:
        old = state.window_end
        if not restart and old < end:
            moved = {"old_end": old, "old_short": old - SHORT_WINDOW, "old_long": old - LONG_WINDOW}
            session.execute(_SLIDE_WINDOWS, {**bounds, **moved, "rebuilt": rebuild})
            slid = True
        state.window_end = end
    session.flush()
    return slid


def _chunks(items: Sequence[str], size: int = 1000) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def budget_spend(session: Session) -> dict[ScopeKey, Decimal]:
    """Period-to-date spend of every budget scope, as the last ``sync`` left it."""
    rows = session.execute(select(BudgetSpend.budget_id, BudgetSpend.tenant, BudgetSpend.spend))
    return {(budget_id, tenant): Decimal(spend) for budget_id, tenant, spend in rows}


def recent_spend(
    session: Session, windows: Sequence[BudgetWindow], *, short_start: datetime, long_start: datetime, now: datetime
) -> dict[ScopeKey, RecentSpend]:
    """Spend of every budget scope over the burn-rate windows (after ``sync`` in the same transaction).

    On PostgreSQL these are the windows ``sync`` slid to the bucket boundary at or after ``now``,
    which hold exactly the buckets in ``[short_start, now)`` and ``[long_start, now)``.
    """
    if session.get_bind().dialect.name != "postgresql":
        return rollup_python.recent(session, windows, short_start=short_start, long_start=long_start, now=now)
    rows = session.execute(select(*BudgetWindowSpend.__table__.columns))
    return {(budget_id, tenant): RecentSpend(Decimal(short), Decimal(long)) for budget_id, tenant, short, long in rows}
