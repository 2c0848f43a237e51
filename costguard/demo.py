"""Demo usage: a realistic month-to-date across tenants, pipelines and models, some budgets past thresholds."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from costguard.config import Settings
from costguard.db import transaction, utcnow
from costguard.usage.models import UsageRecord
from costguard.usage.schemas import parse_usage
from costguard.usage.service import IngestResult, ingest_batch

# Price per 1M tokens (input, output) in the deployment currency: rough public list prices.
MODELS = {
    "gpt-4o": (Decimal("2.50"), Decimal("10.00")),
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
    "claude-sonnet": (Decimal("3.00"), Decimal("15.00")),
    "llama-70b": (Decimal("0.90"), Decimal("0.90")),
    "text-embedding-3": (Decimal("0.02"), Decimal("0")),
}


@dataclass(frozen=True, slots=True)
class DemoTenant:
    name: str
    month_to_date: Decimal  # what the tenant has spent by the end of the generated span
    mix: dict[tuple[str, str], int]  # (pipeline, model) -> weight


TENANTS = (
    DemoTenant(
        "acme",
        Decimal("4200"),
        {("summarize", "gpt-4o"): 5, ("chat", "claude-sonnet"): 3, ("embed", "text-embedding-3"): 1},
    ),
    DemoTenant(
        "globex",
        Decimal("2000"),
        {("summarize", "gpt-4o"): 13, ("chat", "gpt-4o-mini"): 6, ("extract", "llama-70b"): 1},
    ),
    DemoTenant("initech", Decimal("600"), {("chat", "gpt-4o-mini"): 3, ("extract", "llama-70b"): 2}),
    DemoTenant(
        "umbrella",
        Decimal("2500"),
        {("chat", "claude-sonnet"): 4, ("summarize", "gpt-4o"): 1, ("embed", "text-embedding-3"): 1},
    ),
    DemoTenant("hooli", Decimal("900"), {("extract", "gpt-4o"): 1, ("chat", "llama-70b"): 2}),
)
RECORDS_PER_HOUR = 6
CHUNK = 5000


def _diurnal(hour: int) -> float:
    """Business-hours traffic: heavier from 08:00 to 20:00 UTC."""
    return 1.0 if 8 <= hour < 20 else 0.35


def generate(until: datetime, *, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    start = until.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    hours = max(int((until - start).total_seconds() // 3600), 1)
    weights = [_diurnal((start + timedelta(hours=h)).hour) for h in range(hours)]
    # The last six hours run hot for acme: a spike the forecast and burn-rate alerts should see.
    records: list[dict[str, object]] = []
    for tenant in TENANTS:
        hot = [3.0 if tenant.name == "acme" and h >= hours - 6 else 1.0 for h in range(hours)]
        scale = sum(w * m for w, m in zip(weights, hot, strict=True))
        scopes = list(tenant.mix)
        scope_weights = [tenant.mix[s] for s in scopes]
        for h in range(hours):
            hour_budget = tenant.month_to_date * Decimal(str(weights[h] * hot[h] / scale))
            shares = [rng.random() + 0.2 for _ in range(RECORDS_PER_HOUR)]
            for n, share in enumerate(shares):
                pipeline, model = rng.choices(scopes, weights=scope_weights)[0]
                cost = (hour_budget * Decimal(str(share / sum(shares)))).quantize(Decimal("0.000001"))
                at = start + timedelta(hours=h, seconds=rng.randrange(3600))
                price_in, price_out = MODELS[model]
                per_token = (price_in + price_out) / 2 / 1_000_000 or price_in / 1_000_000
                tokens = int(cost / per_token) if per_token else 0
                records.append(
                    {
                        "event_id": f"demo-{tenant.name}-{h:04d}-{n}",
                        "timestamp": at.isoformat().replace("+00:00", "Z"),
                        "tenant": tenant.name,
                        "pipeline": pipeline,
                        "model": model,
                        "cost": str(cost),
                        "kind": "usage",
                        "attributes": {"input_tokens": tokens * 3 // 4, "output_tokens": tokens // 4},
                    }
                )
    return records


def already_loaded(session: Session) -> bool:
    return bool(session.scalar(select(exists().where(UsageRecord.event_id.like("demo-%")))))


def load_demo(
    factory: sessionmaker[Session], settings: Settings, *, until: datetime | None = None, seed: int = 7
) -> IngestResult:
    """Load the demo month once; a second run finds it there and adds nothing."""
    with transaction(factory) as session:
        if already_loaded(session):
            return IngestResult(accepted=0, duplicates=0)
    raws = generate(until or utcnow(), seed=seed)
    records = [parse_usage(raw, currency=settings.currency) for raw in raws]
    accepted = duplicates = 0
    with transaction(factory) as session:
        for start in range(0, len(records), CHUNK):
            result = ingest_batch(session, records[start : start + CHUNK], now=utcnow())
            accepted += result.accepted
            duplicates += result.duplicates
    return IngestResult(accepted, duplicates)
