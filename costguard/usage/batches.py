"""Turn an HTTP body into validated records: JSON array or NDJSON, optionally gzip, within limits."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from costguard.errors import InvalidInput, PayloadTooLarge
from costguard.usage import wire
from costguard.usage.importers import loads
from costguard.usage.schemas import RecordError, UsageIn, parse_usage

MAX_ERRORS_LISTED = 100
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


@dataclass(frozen=True, slots=True)
class Limits:
    max_records: int
    max_bytes: int


def _loads(text: str | bytes) -> Any:
    # Numbers become Decimal (never float) so a cost written as a JSON number stays exact;
    # NaN and Infinity become Decimal too, so the cost check refuses them by name.
    return loads(text)


def decompress(body: bytes, encoding: str | None, limits: Limits) -> bytes:
    if not encoding or encoding.lower() == "identity":
        if len(body) > limits.max_bytes:
            raise PayloadTooLarge(f"the batch is larger than {limits.max_bytes} bytes; split it into smaller batches")
        return body
    if encoding.lower() != "gzip":
        raise InvalidInput(f"Content-Encoding {encoding!r} is not supported; send gzip or no encoding")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limits.max_bytes + 1)
    except zlib.error as exc:
        raise InvalidInput(
            f"the body is not valid gzip ({exc}); compress it with gzip or drop Content-Encoding"
        ) from None
    if len(data) > limits.max_bytes or inflater.unconsumed_tail:
        raise PayloadTooLarge(
            f"the batch is larger than {limits.max_bytes} bytes once decompressed; split it into smaller batches"
        )
    return data


def _media(content_type: str | None) -> str:
    return (content_type or "application/json").split(";")[0].strip().lower()


def fast_records(body: bytes, content_type: str | None, *, currency: str, limits: Limits) -> list[UsageIn] | None:
    """Every record of a valid batch through the fast reader, or None: the slow path judges (and explains)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _media(content_type) not in NDJSON_TYPES:
        return wire.parse_array(text, currency=currency, limit=limits.max_records)
    records: list[UsageIn] = []
    for line in text.splitlines():  # the same split as raw_records
        if not line.strip():
            continue
        record = wire.parse_line(line, currency=currency)
        if record is None or len(records) == limits.max_records:
            return None
        records.append(record)
    return records


def raw_records(body: bytes, content_type: str | None) -> list[Any]:
    """The records of a body, as parsed JSON values (not yet validated)."""
    media = _media(content_type)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the body is not UTF-8; encode the JSON as UTF-8") from None
    if media in NDJSON_TYPES:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(_loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidInput(
                    f"line {number} column {exc.colno} is not valid JSON ({exc.msg}); send one JSON object per line"
                ) from None
            except ValueError as exc:
                raise InvalidInput(
                    f"line {number} has a number that cannot be read ({exc}); nothing was stored"
                ) from None
        return records
    try:
        parsed = _loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "send a JSON array of records"
        ) from None
    except ValueError as exc:
        raise InvalidInput(f"the body has a number that cannot be read ({exc}); nothing was stored") from None
    if not isinstance(parsed, list):
        raise InvalidInput(
            "the body must be a JSON array of usage records (or NDJSON with Content-Type application/x-ndjson)"
        )
    return parsed


def validate_records(raws: list[Any], *, currency: str, limits: Limits) -> list[UsageIn]:
    """Validate every record; refuse the whole batch with each bad record's index, field and reason."""
    if len(raws) > limits.max_records:
        raise PayloadTooLarge(f"the batch has {len(raws)} records, more than {limits.max_records}; split it")
    records: list[UsageIn] = []
    errors: list[dict[str, Any]] = []
    for index, raw in enumerate(raws):
        try:
            records.append(parse_usage(raw, currency=currency))
        except RecordError as exc:
            errors.append({"index": index, "field": exc.field, "message": exc.message})
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more invalid records)" if len(errors) > 1 else ""
        raise InvalidInput(
            f"record {first['index']} field {first['field']}: {first['message']}{more}; nothing was stored",
            details=errors[:MAX_ERRORS_LISTED],
        )
    return records
