"""The fast reader: JSON records decoded by msgspec straight into field values, then validated.

``json.loads`` into a dict and ``parse_usage`` cost about as much as the database's own work per
record; msgspec decodes several times faster. The fast reader may only accept what the slow one
(``importers.loads`` + ``parse_usage``) accepts, with the identical ``UsageIn``: both hand the
same values to ``schemas.validate_fields``, numbers are read by the same rule (integers as int,
every other number as an exact Decimal of its text), and whenever msgspec refuses the text or
anything at all goes wrong the reader answers None and the caller takes the slow path, so every
error message is the slow path's own.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from costguard.usage.schemas import UsageIn, validate_fields


class _Wire(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A usage record's fields, any JSON value each (the checks are validate_fields'), None if absent."""

    event_id: Any = None
    timestamp: Any = None
    tenant: Any = None
    pipeline: Any = None
    model: Any = None
    cost: Any = None
    currency: Any = None
    kind: Any = None
    attributes: Any = None


class _Flat(_Wire, forbid_unknown_fields=True, gc=False):
    """The common record: attributes absent, or an object of integers, strings, booleans and nulls.

    Such attributes hold no number that json would read as a Decimal, and for them msgspec's
    sorted encoding is byte for byte the text of ``schemas._encode_attributes`` (held by a test),
    so it is encoded here in C instead of by the json encoder.
    """

    attributes: dict[str, int | str | bool | None] | None = None


# float_hook gets the number's text, as json's parse_float does: Decimal("0.10") keeps its exponent.
_RECORD = msgspec.json.Decoder(_Wire, float_hook=Decimal)
_RECORDS = msgspec.json.Decoder(list[_Wire], float_hook=Decimal)
_FLAT = msgspec.json.Decoder(_Flat, float_hook=Decimal)
_FLATS = msgspec.json.Decoder(list[_Flat], float_hook=Decimal)
_ENCODE = msgspec.json.Encoder(order="sorted").encode


def _validated(wire: _Wire, currency: str) -> UsageIn:
    attributes = wire.attributes
    return validate_fields(
        wire.event_id,
        wire.timestamp,
        wire.tenant,
        wire.pipeline,
        wire.model,
        wire.cost,
        wire.currency,
        wire.kind,
        attributes,
        currency=currency,
        attributes_json=_ENCODE(attributes).decode() if type(wire) is _Flat and attributes is not None else None,
    )


def parse_line(text: str, *, currency: str) -> UsageIn | None:
    """One JSON object (a line of JSON Lines) as a valid record, or None: let the slow path judge it."""
    try:
        try:
            wire: _Wire = _FLAT.decode(text)
        except msgspec.ValidationError:  # other attributes: valid JSON, decoded as any values
            wire = _RECORD.decode(text)
        return _validated(wire, currency)
    except Exception:  # any doubt goes to the slow path, which reports it properly
        return None


def parse_array(text: str, *, currency: str, limit: int) -> list[UsageIn] | None:
    """A JSON array of at most ``limit`` valid records, or None: let the slow path judge the batch."""
    try:
        try:
            wires: list[_Wire] = _FLATS.decode(text)  # type: ignore[assignment]
        except msgspec.ValidationError:
            wires = _RECORDS.decode(text)
        if len(wires) > limit:
            return None
        return [_validated(wire, currency) for wire in wires]
    except Exception:  # as in parse_line
        return None
