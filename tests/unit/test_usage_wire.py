"""The fast reader (msgspec) judges every JSON record exactly as the slow one (json + parse_usage).

It may accept only what the slow path accepts, with the identical record (same canonical
attributes, same content hash, same cost text), and everything it does not accept goes to the
slow path, so errors are the slow path's. Checked on generated records, valid and invalid, for
file lines and for HTTP batches (NDJSON and JSON arrays).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costguard.errors import CostguardError
from costguard.usage.batches import Limits, fast_records, raw_records, validate_records
from costguard.usage.importers import RowProblem, read_jsonl
from costguard.usage.schemas import (
    RecordError,
    UsageIn,
    _encode_attributes,
    _timestamp_text,
    parse_timestamp,
    parse_usage,
)
from costguard.usage.wire import _ENCODE, parse_line

CURRENCY = "USD"
LIMITS = Limits(max_records=5, max_bytes=1 << 20)

names = st.one_of(
    st.sampled_from(["acme", "globex", "summarize", "gpt-4o", "*", "", " ", "a\tb", "é-ü", "x" * 129, "y" * 257]),
    st.text(max_size=20),
    st.integers(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
timestamps = st.one_of(
    st.sampled_from(
        [
            "2026-12-04T10:15:00Z",
            "2026-12-04T10:15:00.000001+05:30",
            "2026-12-04T10:15:00,5Z",
            "2026-12-04 10:15:00-01:00",
            "2026-12-04T10:15:00",
            "20261204T101500Z",
            "2026-13-04T10:15:00Z",
            "",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.integers(),
)
# Costs as the JSON text to splice in: strings, and numbers written exactly as a client may write them.
number_texts = st.one_of(
    st.sampled_from(["0", "-0", "1.50", "-0.0", "1e5", "1E-7", "0.00000125", "1e400", "-2.5", "123456789012345678901"]),
    st.decimals(allow_nan=False, allow_infinity=False, places=14).map(str),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
costs = st.one_of(
    number_texts,
    number_texts.map(json.dumps),
    st.sampled_from(
        ['"NaN"', "NaN", "Infinity", '" 1.5 "', '""', "true", "null", "[1]", '"0012"', '"1.0000000000001"']
    ),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
attributes = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=6), st.recursive(leaves, lambda inner: st.lists(inner, max_size=3), max_leaves=5)),
    st.integers(),
    st.lists(st.integers(), max_size=2),
    st.just({"big": "z" * 9000}),
)


good_names = st.one_of(
    st.sampled_from(["acme", "globex", "summarize", "gpt-4o", "é-ü"]),
    st.text(min_size=1, max_size=12).filter(lambda t: t.isprintable() and t != "*"),
)
good_timestamps = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
good_costs = st.decimals(min_value=-(10**6), max_value=10**6, places=12).map(str)
good_costs = st.one_of(good_costs, good_costs.map(json.dumps))
good_attributes = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=6), st.one_of(st.integers(-(10**6), 10**6), st.text(max_size=6)), max_size=3),
)


@st.composite
def record_texts(draw: st.DrawFn) -> str:
    """One JSON object as text: fields present or absent, valid or not, sometimes with oddities."""
    fields: dict[str, Any] = {}
    for name, good, anything in [
        ("event_id", good_names, names),
        ("timestamp", good_timestamps, timestamps),
        ("tenant", good_names, names),
        ("pipeline", st.one_of(st.none(), good_names), st.one_of(st.none(), names)),
        ("model", st.one_of(st.none(), good_names), st.one_of(st.none(), names)),
        ("currency", st.sampled_from(["USD", None]), st.sampled_from(["USD", "EUR", "", None, 1])),
        ("kind", st.sampled_from(["usage", "adjustment", None]), st.sampled_from(["", "refund", 0, [], "usage"])),
        ("attributes", good_attributes, attributes),
    ]:
        roll = draw(st.integers(0, 19))
        if roll >= 1:  # usually present, and usually valid
            fields[name] = draw(good if roll >= 3 else anything)
    if draw(st.integers(0, 19)) == 0:
        fields["extra"] = 1
    body = json.dumps(fields, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 9)):
        cost = draw(good_costs if draw(st.booleans()) else costs)
        body = body[:-1] + (", " if fields else "") + f'"cost": {cost}' + "}"
    oddity = draw(st.integers(0, 24))
    if oddity == 0:
        body = body[:-1] + ', "tenant": "other"}'  # a duplicate key: the last one wins in both readers
    elif oddity == 1:
        body = body[: draw(st.integers(0, len(body)))]
    elif oddity == 2:
        body = "\ufeff" + body
    elif oddity == 3:
        body = f"[{body}]"
    elif oddity == 4:
        body = body.replace('"acme"', '"\\ud800"')
    elif oddity == 5:
        body = f"  {body}\r\n"
    return body


def typical(i: int) -> str:
    return json.dumps(
        {
            "event_id": f"req-{i}",
            "timestamp": "2026-12-04T10:15:00.25Z",
            "tenant": "acme",
            "pipeline": "summarize",
            "model": None,
            "cost": "0.00000125",
            "currency": "USD",
            "kind": "usage",
            "attributes": {"input_tokens": 812, "note": 'é\t"x"'},
        }
    )


def same(a: UsageIn, b: UsageIn) -> bool:
    """Equal, and equal in every representation that is stored or hashed."""
    return (
        a == b
        and str(a.cost) == str(b.cost)
        and repr(a.attributes) == repr(b.attributes)
        and a.timestamp.tzinfo == b.timestamp.tzinfo
    )


def slow_line(text: str) -> Any:
    """What the file reader made of a line before the fast reader existed."""
    rows = list(read_jsonl([text], "f.jsonl"))
    if not rows:
        return "blank line, skipped"
    ((_, raw),) = rows
    if isinstance(raw, RowProblem):
        return ("row", raw.where, raw.message)
    try:
        return parse_usage(raw, currency=CURRENCY)
    except RecordError as exc:
        return ("record", exc.field, exc.message)


def file_line(text: str) -> Any:
    """What the file reader makes of a line now (the fast reader first)."""
    rows = list(read_jsonl([text], "f.jsonl", currency=CURRENCY))
    if not rows:
        return "blank line, skipped"
    ((_, raw),) = rows
    return raw if isinstance(raw, UsageIn) else slow_line(text)


def http_outcome(body: bytes, content_type: str, *, fast: bool) -> Any:
    records = fast_records(body, content_type, currency=CURRENCY, limits=LIMITS) if fast else None
    try:
        if records is None:
            records = validate_records(raw_records(body, content_type), currency=CURRENCY, limits=LIMITS)
    except CostguardError as exc:
        return (type(exc).__name__, exc.message, exc.details)
    return records


def assert_same_outcome(slow: Any, fast: Any) -> None:
    if isinstance(slow, list) and isinstance(fast, list):
        assert len(slow) == len(fast) and all(same(a, b) for a, b in zip(slow, fast, strict=True))
    elif isinstance(slow, UsageIn) and isinstance(fast, UsageIn):
        assert same(slow, fast)
    else:
        assert slow == fast


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record_texts())
def test_a_line_gets_the_same_record_or_the_same_error_through_either_reader(text: str) -> None:
    fast = parse_line(text, currency=CURRENCY)
    slow = slow_line(text)
    if fast is not None:
        assert isinstance(slow, UsageIn), (text, slow)
        assert same(fast, slow)
    assert_same_outcome(slow, file_line(text))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record_texts(), max_size=7), st.sampled_from(["\n", "\r\n", "\u2028", "\n\n"]))
def test_an_http_batch_gets_the_same_answer_through_either_reader(texts: list[str], separator: str) -> None:
    ndjson = separator.join(texts).encode()
    assert_same_outcome(
        http_outcome(ndjson, "application/x-ndjson", fast=False),
        http_outcome(ndjson, "application/x-ndjson", fast=True),
    )
    array = ("[" + ",".join(texts) + "]").encode()
    assert_same_outcome(
        http_outcome(array, "application/json", fast=False), http_outcome(array, "application/json", fast=True)
    )


def test_the_fast_reader_takes_ordinary_records_and_json_number_costs() -> None:
    assert parse_line(typical(1), currency=CURRENCY) is not None
    number = typical(2).replace('"0.00000125"', "0.00000125")
    record = parse_line(number, currency=CURRENCY)
    assert record is not None and str(record.cost) == "0.00000125"
    body = "\n".join(typical(i) for i in range(5)).encode()
    assert fast_records(body, "application/x-ndjson", currency=CURRENCY, limits=LIMITS) is not None
    array = ("[" + ",".join(typical(i) for i in range(5)) + "]").encode()
    assert fast_records(array, "application/json", currency=CURRENCY, limits=LIMITS) is not None


def test_unusual_values_are_left_to_the_slow_reader() -> None:
    for oddity in ['"cost": NaN', '"attributes": {"ratio": 0.5}', '"tenant": "\\ud800"', '"extra": 1']:
        text = typical(3)[:-1] + ", " + oddity + "}"
        fast = parse_line(text, currency=CURRENCY)
        slow = slow_line(text)
        assert fast is None or (isinstance(slow, UsageIn) and same(fast, slow))
    # a float attribute is accepted by both, as the same JSON number
    text = typical(4)[:-1] + ', "attributes": {"ratio": 0.5}}'
    slow, fast = slow_line(text), parse_line(text, currency=CURRENCY)
    assert isinstance(slow, UsageIn) and slow.attributes_json == '{"ratio":0.5}'
    assert fast is None or same(fast, slow)


def test_a_batch_over_the_record_limit_is_refused_by_the_slow_path() -> None:
    body = "\n".join(typical(i) for i in range(LIMITS.max_records + 1)).encode()
    assert fast_records(body, "application/x-ndjson", currency=CURRENCY, limits=LIMITS) is None
    array = ("[" + ",".join(typical(i) for i in range(LIMITS.max_records + 1)) + "]").encode()
    assert fast_records(array, "application/json", currency=CURRENCY, limits=LIMITS) is None


flat_values = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.text())


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(), flat_values, max_size=6))
def test_msgspec_encodes_plain_attributes_exactly_as_the_json_encoder(attributes: dict[str, Any]) -> None:
    try:
        expected = _encode_attributes(attributes)
    except ValueError:  # a lone surrogate: both refuse
        return
    try:
        encoded = _ENCODE(attributes).decode()
    except msgspec.EncodeError:
        return  # the reader then takes the slow path
    assert encoded == expected


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(timezones=st.just(UTC)),
    st.sampled_from(["Z", "+00:00"]),
    st.sampled_from([None, 3, 6]),
    st.sampled_from(["T", " "]),
)
def test_the_hashed_time_text_is_isoformat_whatever_the_written_form(
    at: datetime, offset: str, digits: int | None, separator: str
) -> None:
    text = at.replace(tzinfo=None).isoformat(sep=separator, timespec="seconds") + offset
    if digits:
        text = text.replace(offset, f".{at.microsecond:06d}"[: digits + 1] + offset)
    parsed = parse_timestamp(text)
    assert _timestamp_text(text, parsed) == parsed.isoformat()


def test_a_time_that_leaves_the_calendar_in_utc_is_refused_by_name() -> None:
    text = typical(5).replace("2026-12-04T10:15:00.25Z", "0001-01-01T00:00:00+02:00")
    assert slow_line(text) == (
        "record",
        "timestamp",
        "'0001-01-01T00:00:00+02:00' is out of range once converted to UTC",
    )
    assert parse_line(text, currency=CURRENCY) is None
