"""The usage record: strict validation of one record and its canonical content hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from costguard.money import MoneyError, money_text, parse_money

KINDS = ("usage", "adjustment")
FIELDS = ("event_id", "timestamp", "tenant", "pipeline", "model", "cost", "currency", "kind", "attributes")
MAX_TENANT_LENGTH = 128
MAX_EVENT_ID_LENGTH = 256
MAX_SCOPE_LENGTH = 128
MAX_ATTRIBUTES_BYTES = 8192
WILDCARD = "*"


class RecordError(ValueError):
    """One problem with one field of one record."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class UsageIn:
    tenant: str
    event_id: str
    timestamp: datetime
    pipeline: str | None
    model: str | None
    cost: Decimal
    currency: str
    kind: str
    attributes: dict[str, Any] | None
    content_hash: str


def _name(raw: Mapping[str, Any], field: str, limit: int, *, required: bool) -> str | None:
    value = raw.get(field)
    if value is None:
        if required:
            raise RecordError(field, "is required")
        return None
    if not isinstance(value, str):
        raise RecordError(field, "must be a string")
    if not value:
        raise RecordError(field, "must not be empty" + ("" if required else "; use null for none"))
    if len(value) > limit:
        raise RecordError(field, f"is longer than {limit} characters")
    if value == WILDCARD:
        raise RecordError(field, f'"{WILDCARD}" is reserved for budgets that match everything')
    if not value.isprintable():
        raise RecordError(field, "must not contain control characters")
    return value


def parse_timestamp(value: object, field: str = "timestamp") -> datetime:
    if not isinstance(value, str) or not value:
        raise RecordError(field, "is required as an RFC 3339 string such as 2026-12-04T10:15:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise RecordError(field, f"{value!r} is not RFC 3339; use a form such as 2026-12-04T10:15:00Z") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise RecordError(field, f"{value!r} has no UTC offset; add Z or +HH:MM")
    return parsed.astimezone(UTC)


def parse_usage(raw: object, *, currency: str) -> UsageIn:
    """Validate one record against the contract; raise ``RecordError`` naming the first bad field."""
    if not isinstance(raw, Mapping):
        raise RecordError("record", "must be a JSON object")
    unknown = [key for key in raw if key not in FIELDS]
    if unknown:
        raise RecordError(str(unknown[0]), "is not a usage record field; put extra data in attributes")
    event_id = _name(raw, "event_id", MAX_EVENT_ID_LENGTH, required=True)
    tenant = _name(raw, "tenant", MAX_TENANT_LENGTH, required=True)
    assert event_id is not None and tenant is not None
    timestamp = parse_timestamp(raw.get("timestamp"))
    pipeline = _name(raw, "pipeline", MAX_SCOPE_LENGTH, required=False)
    model = _name(raw, "model", MAX_SCOPE_LENGTH, required=False)
    kind = raw.get("kind") or "usage"
    if kind not in KINDS:
        raise RecordError("kind", f"must be usage or adjustment, not {kind!r}")
    if "cost" not in raw or raw["cost"] is None:
        raise RecordError("cost", "is required")
    try:
        cost = parse_money(raw["cost"])
    except MoneyError as exc:
        raise RecordError("cost", str(exc)) from exc
    if cost < 0 and kind != "adjustment":
        raise RecordError("cost", 'is negative; only records with kind "adjustment" may be negative')
    record_currency = raw.get("currency") or currency
    if record_currency != currency:
        raise RecordError("currency", f"{record_currency!r} differs from this deployment's currency {currency}")
    attributes = raw.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, Mapping):
            raise RecordError("attributes", "must be a JSON object")
        attributes = dict(attributes)
        if len(_canonical(attributes)) > MAX_ATTRIBUTES_BYTES:
            raise RecordError("attributes", f"is larger than {MAX_ATTRIBUTES_BYTES} bytes as JSON")
    content_hash = _content_hash(tenant, event_id, timestamp, pipeline, model, cost, currency, kind, attributes)
    return UsageIn(tenant, event_id, timestamp, pipeline, model, cost, currency, kind, attributes, content_hash)


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False).encode()


def _content_hash(
    tenant: str,
    event_id: str,
    timestamp: datetime,
    pipeline: str | None,
    model: str | None,
    cost: Decimal,
    currency: str,
    kind: str,
    attributes: dict[str, Any] | None,
) -> str:
    document = [tenant, event_id, timestamp.isoformat(), pipeline, model, money_text(cost), currency, kind, attributes]
    return hashlib.sha256(_canonical(document)).hexdigest()


def usage_document(record: UsageIn) -> dict[str, Any]:
    """The record as the API shows it: money as an exact string, time in RFC 3339 UTC."""
    return {
        "event_id": record.event_id,
        "timestamp": record.timestamp.isoformat().replace("+00:00", "Z"),
        "tenant": record.tenant,
        "pipeline": record.pipeline,
        "model": record.model,
        "cost": money_text(record.cost),
        "currency": record.currency,
        "kind": record.kind,
        "attributes": record.attributes,
    }
