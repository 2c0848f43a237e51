"""FOCUS (FinOps Open Cost and Usage Specification) CSV exports mapped onto usage records.

The mapping is the contract's: tenant from SubAccountId else BillingAccountId, time from
ChargePeriodStart, cost from EffectiveCost, model from SkuPriceDetails.ModelId else SkuId, and
a content hash plus occurrence number as event id when the export has no x_EventId, so that
re-importing a file is a no-op while two identical charges in one file both count.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from costguard.usage.importers import FileFormatError, RowProblem

ADJUSTMENT_CATEGORIES = {"Credit", "Adjustment"}
ATTRIBUTE_COLUMNS = (
    "BillingAccountId",
    "SubAccountId",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ServiceName",
    "SkuId",
    "SkuMeter",
    "ConsumedQuantity",
    "ConsumedUnit",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ChargePeriodEnd",
    "InvoiceId",
)


@dataclass(frozen=True, slots=True)
class FocusOptions:
    tenant_column: str | None = None
    tenant: str | None = None
    cost_column: str = "EffectiveCost"


class RowError(ValueError):
    """A FOCUS cell that cannot be mapped; carries the column for the error message."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(f"column {column}: {message}")
        self.column = column
        self.message = message


def _model(row: dict[str, str]) -> str | None:
    details = row.get("SkuPriceDetails") or ""
    if details.strip():
        try:
            parsed = json.loads(details)
        except json.JSONDecodeError as exc:
            raise RowError("SkuPriceDetails", f"is not valid JSON ({exc.msg})") from None
        if isinstance(parsed, dict) and parsed.get("ModelId"):
            return str(parsed["ModelId"])
    return row.get("SkuId") or None


def _pipeline(row: dict[str, str]) -> str | None:
    if row.get("x_Pipeline"):
        return row["x_Pipeline"]
    tags = row.get("Tags") or ""
    if tags.strip():
        try:
            parsed = json.loads(tags)
        except json.JSONDecodeError as exc:
            raise RowError("Tags", f"is not valid JSON ({exc.msg})") from None
        if isinstance(parsed, dict) and parsed.get("pipeline"):
            return str(parsed["pipeline"])
    return None


def _tenant(row: dict[str, str], options: FocusOptions) -> str:
    if options.tenant_column:
        value = row.get(options.tenant_column)
        if not value:
            raise RowError(options.tenant_column, "is empty; every row needs a tenant in the column you chose")
        return value
    for column in ("SubAccountId", "BillingAccountId"):
        if row.get(column):
            return row[column]
    if options.tenant:
        return options.tenant
    raise RowError("SubAccountId", "and BillingAccountId are both missing; pass --tenant T or --tenant-column NAME")


def _kind(row: dict[str, str]) -> str:
    if row.get("ChargeCategory") in ADJUSTMENT_CATEGORIES or row.get("ChargeClass") == "Correction":
        return "adjustment"
    return "usage"


def _timestamp(row: dict[str, str]) -> str:
    value = row.get("ChargePeriodStart") or ""
    if "T" not in value or not value[:4].isdigit():
        raise RowError("ChargePeriodStart", f"{value!r} is not an ISO 8601 date-time such as 2025-05-01T00:00:00Z")
    return value


def map_row(row: dict[str, str], *, options: FocusOptions, event_id: str) -> dict[str, Any]:
    if options.cost_column not in row:
        raise RowError(options.cost_column, "is missing from the file; choose another with --cost-column")
    attributes = {column: row[column] for column in ATTRIBUTE_COLUMNS if row.get(column)}
    return {
        "event_id": row.get("x_EventId") or event_id,
        "timestamp": _timestamp(row),
        "tenant": _tenant(row, options),
        "pipeline": _pipeline(row),
        "model": _model(row),
        "cost": row.get(options.cost_column) or None,
        "currency": row.get("BillingCurrency") or None,
        "kind": _kind(row),
        "attributes": {"focus": attributes},
    }


def read_focus(lines: Iterable[str], name: str, options: FocusOptions | None = None) -> Iterator[tuple[int, Any]]:
    """Yield (line, usage record dict or RowProblem) per FOCUS row; an unreadable file raises naming line and column."""
    options = options or FocusOptions()
    reader = csv.reader(iter(lines))
    try:
        header = next(reader)
    except StopIteration:
        return
    if header and header[0].startswith("\ufeff"):
        raise FileFormatError(
            f"{name}:1: column 1: the file starts with a UTF-8 byte-order mark, which FOCUS exports must not "
            "have; remove it (e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' FILE) and import again"
        )
    # Occurrences are counted per 64-bit digest prefix (an int key, ~70 bytes a row) so a FOCUS
    # export of millions of rows stays within flat-ish memory; the event id keeps the long digest.
    occurrences: Counter[int] = Counter()
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            message = f"has {len(cells)} columns but the header has {len(header)}"
            yield line, RowProblem("line", message, ",".join(cells))
            continue
        row = dict(zip(header, cells, strict=True))
        digest = hashlib.sha256("\x1f".join(cells).encode()).hexdigest()
        seen = int(digest[:16], 16)
        occurrences[seen] += 1
        event_id = f"focus-{digest[:40]}-{occurrences[seen]}"
        try:
            yield line, map_row(row, options=options, event_id=event_id)
        except RowError as exc:
            position = f"column {exc.column}"
            if exc.column in header:
                position = f"column {header.index(exc.column) + 1} ({exc.column})"
            yield line, RowProblem(position, exc.message, ",".join(cells))
