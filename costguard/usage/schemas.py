"""The usage record: strict validation of one record and its canonical content hash.

This is the hot path of every ingest (a million records a minute on a file import), so it does
each check once, serialises the attributes once and hashes one pre-built document.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any

from costguard.money import MoneyError, parse_money

KINDS = ("usage", "adjustment")
FIELDS = ("event_id", "timestamp", "tenant", "pipeline", "model", "cost", "currency", "kind", "attributes")
_FIELD_SET = frozenset(FIELDS)
MAX_TENANT_LENGTH = 128
MAX_EVENT_ID_LENGTH = 256
MAX_SCOPE_LENGTH = 128
MAX_ATTRIBUTES_BYTES = 8192
WILDCARD = "*"

# One encoder for the hash and the stored attributes: sorted keys, no spaces, UTF-8 kept as is.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
_encode_string = json.encoder.encode_basestring  # what _ENCODER does for a str, without its per-call setup


def _refuse(value: object) -> object:
    raise TypeError(type(value).__name__)


# Attributes from JSON hold only plain values, except Decimal numbers: encode strictly and fall
# back to converting (rarely needed) instead of walking every attribute of every record first.
_STRICT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_refuse)
# The C encoder, built once: JSONEncoder.encode builds a new one on every call.
_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_strict_c = _make_encoder(None, _refuse, _encode_string, None, ":", ",", True, False, True) if _make_encoder else None


def _encode_attributes(value: dict[str, Any]) -> str:
    if _strict_c is None:  # pragma: no cover - CPython always has the C encoder
        return _STRICT.encode(value)
    return "".join(_strict_c(value, 0))


# A plain decimal string within the contract's bounds (no exponent, no leading zeros): the common
# case, checked and canonicalised without building Decimal tuples; anything else takes parse_money.
_PLAIN_MONEY = re.compile(r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,12})?")

# Tenants, pipelines and models repeat across millions of records: remember the valid ones (with
# their JSON text for the hash) instead of checking each occurrence again. Bounded.
_KNOWN_SCOPES: dict[str, str] = {}
_KNOWN_SCOPES_MAX = 100_000


class RecordError(ValueError):
    """One problem with one field of one record."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(slots=True)
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
    # The attributes as canonical JSON text, as stored (None when there are none).
    attributes_json: str | None = None


def _name(value: Any, field: str, limit: int, *, required: bool) -> str | None:
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


def _scope(value: Any, field: str, *, required: bool) -> str | None:
    """A tenant, pipeline or model name; valid names are remembered (they repeat)."""
    if type(value) is not str or value not in _KNOWN_SCOPES:  # a list or dict is not even hashable
        value = _name(value, field, MAX_SCOPE_LENGTH if field != "tenant" else MAX_TENANT_LENGTH, required=required)
        if value is not None:
            if len(_KNOWN_SCOPES) >= _KNOWN_SCOPES_MAX:
                _KNOWN_SCOPES.clear()
            _KNOWN_SCOPES[value] = _encode_string(value)
    return value


def _cost(value: object) -> tuple[Decimal, str]:
    """The exact cost and its canonical text (as ``money_text`` gives it)."""
    if isinstance(value, str) and _PLAIN_MONEY.fullmatch(value):
        text = value.rstrip("0").rstrip(".") if "." in value else value
        if text in ("-0", "", "-"):
            text = "0"
        return Decimal(value), text
    try:
        amount = parse_money(value)
    except MoneyError as exc:
        raise RecordError("cost", str(exc)) from exc
    return amount, _exact_text(amount)


_WIDE = Context(prec=64)


def _exact_text(amount: Decimal) -> str:
    """``money_text`` without rounding: 18 + 12 digits exceed the default 28-digit context."""
    if amount == 0:
        return "0"
    return format(amount.normalize(_WIDE), "f")


def parse_timestamp(value: object, field: str = "timestamp") -> datetime:
    if not isinstance(value, str) or not value:
        raise RecordError(field, "is required as an RFC 3339 string such as 2026-12-04T10:15:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise RecordError(field, f"{value!r} is not RFC 3339; use a form such as 2026-12-04T10:15:00Z") from exc
    if parsed.tzinfo is UTC:  # the common case, tested first: utcoffset() costs as much as the parse
        return parsed
    if parsed.utcoffset() is None:
        raise RecordError(field, f"{value!r} has no UTC offset; add Z or +HH:MM")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the first representable UTC time
        raise RecordError(field, f"{value!r} is out of range once converted to UTC") from None


# A UTC time written the way most clients write it: its isoformat() is the text with +00:00 for Z
# (the digits are the parsed fields, zero-padded), which spares isoformat() on the hot path.
_UTC_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?Z")


def _timestamp_text(value: str, parsed: datetime) -> str:
    """``parsed.isoformat()`` (as hashed), taken from the text it was parsed from when that is the same."""
    if _UTC_TEXT.fullmatch(value) and (parsed.microsecond or len(value) == 20):
        return value[:-1] + "+00:00"
    return parsed.isoformat()


def _plain(value: Any) -> Any:
    """Attributes as plain JSON values: exact JSON numbers read as Decimal become int or float.

    Attributes are free-form metadata (token counts, latencies), not money: a fractional number
    there is kept as the JSON number it was sent as; only ``cost`` needs decimal exactness.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise RecordError("attributes", "must not contain NaN or Infinity")
        if value == value.to_integral_value() and value.adjusted() < 19:
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def parse_usage(raw: object, *, currency: str) -> UsageIn:
    """Validate one record against the contract; raise ``RecordError`` naming the first bad field."""
    if not isinstance(raw, Mapping):
        raise RecordError("record", "must be a JSON object")
    if not _FIELD_SET.issuperset(raw):
        unknown = [key for key in raw if key not in _FIELD_SET]
        raise RecordError(str(unknown[0]), "is not a usage record field; put extra data in attributes")
    get = raw.get
    return validate_fields(
        get("event_id"),
        get("timestamp"),
        get("tenant"),
        get("pipeline"),
        get("model"),
        get("cost"),
        get("currency"),
        get("kind"),
        get("attributes"),
        currency=currency,
    )


def validate_fields(
    event_id: Any,
    timestamp_value: Any,
    tenant_value: Any,
    pipeline_value: Any,
    model_value: Any,
    cost_value: Any,
    currency_value: Any,
    kind_value: Any,
    attributes: Any,
    *,
    currency: str,
    attributes_json: str | None = None,
) -> UsageIn:
    """The checks of ``parse_usage`` on the field values (None = absent), in the same order.

    Shared by every reader (``wire`` decodes JSON into these values without a dict), so a
    record is judged, canonicalised and hashed by exactly one piece of code. A reader that has
    already encoded plain attributes canonically (the same text ``_encode_attributes`` makes)
    passes it as ``attributes_json``.
    """
    if (
        not (type(event_id) is str and 0 < len(event_id) <= MAX_EVENT_ID_LENGTH and event_id != WILDCARD)
        or not event_id.isprintable()
    ):
        event_id = _name(event_id, "event_id", MAX_EVENT_ID_LENGTH, required=True)
    known = _KNOWN_SCOPES
    tenant = (
        tenant_value
        if type(tenant_value) is str and tenant_value in known
        else _scope(tenant_value, "tenant", required=True)
    )
    assert event_id is not None and tenant is not None
    timestamp = parse_timestamp(timestamp_value)
    timestamp_text = _timestamp_text(timestamp_value, timestamp)
    pipeline = (
        pipeline_value
        if type(pipeline_value) is str and pipeline_value in known
        else _scope(pipeline_value, "pipeline", required=False)
    )
    model = (
        model_value
        if type(model_value) is str and model_value in known
        else _scope(model_value, "model", required=False)
    )
    kind = kind_value or "usage"
    if kind not in KINDS:
        raise RecordError("kind", f"must be usage or adjustment, not {kind!r}")
    if cost_value is None:
        raise RecordError("cost", "is required")
    cost, cost_text = _cost(cost_value)
    if cost < 0 and kind != "adjustment":
        raise RecordError("cost", 'is negative; only records with kind "adjustment" may be negative')
    record_currency = currency_value or currency
    if record_currency != currency:
        raise RecordError("currency", f"{record_currency!r} differs from this deployment's currency {currency}")
    if attributes is None:
        attributes_json = None
    elif attributes_json is None or type(attributes) is not dict:
        if not isinstance(attributes, Mapping):
            raise RecordError("attributes", "must be a JSON object")
        if type(attributes) is not dict:
            attributes = dict(attributes)
        try:
            attributes_json = _encode_attributes(attributes)
        except (TypeError, ValueError):
            attributes = _plain(attributes)
            attributes_json = _encode_attributes(attributes)
    try:
        # A UTF-8 character is at most 4 bytes: short texts need no encoding to be measured.
        if (
            attributes_json is not None
            and len(attributes_json) * 4 > MAX_ATTRIBUTES_BYTES
            and len(attributes_json.encode()) > MAX_ATTRIBUTES_BYTES
        ):
            raise RecordError("attributes", f"is larger than {MAX_ATTRIBUTES_BYTES} bytes as JSON")
        content_hash = _content_hash(
            tenant, event_id, timestamp_text, pipeline, model, cost_text, currency, kind, attributes_json
        )
    except UnicodeEncodeError:
        # Only attributes can get here with such text: the names above must be printable.
        raise RecordError(
            "attributes", "holds text that is not valid Unicode (an unpaired surrogate such as \\ud800); send UTF-8"
        ) from None
    return UsageIn(
        tenant, event_id, timestamp, pipeline, model, cost, currency, kind, attributes, content_hash, attributes_json
    )


def _canonical(value: object) -> bytes:
    return _ENCODER.encode(value).encode()


def _content_hash(
    tenant: str,
    event_id: str,
    timestamp_text: str,
    pipeline: str | None,
    model: str | None,
    cost_text: str,
    currency: str,
    kind: str,
    attributes_json: str | None,
) -> str:
    """sha256 of the canonical JSON array of the record's fields.

    The bytes equal ``_canonical([tenant, event_id, timestamp, pipeline, model, cost, currency,
    kind, attributes])``, ``timestamp_text`` being ``timestamp.isoformat()``; it is assembled from
    pieces already serialised (attributes, remembered scope names) rather than serialising
    everything again. Timestamps, costs, currencies and
    kinds never need JSON escaping.
    """
    known = _KNOWN_SCOPES
    document = (
        f'[{known.get(tenant) or _encode_string(tenant)},{_encode_string(event_id)},"{timestamp_text}",'
        f"{'null' if pipeline is None else known.get(pipeline) or _encode_string(pipeline)},"
        f"{'null' if model is None else known.get(model) or _encode_string(model)},"
        f'"{cost_text}","{currency}","{kind}",{attributes_json or "null"}]'
    )
    return hashlib.sha256(document.encode()).hexdigest()
