"""The record's content hash is stable and canonical; exact numbers and row problems from the readers."""

from __future__ import annotations

import hashlib
import json
from decimal import Context, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costguard.money import parse_money
from costguard.usage.importers import RowProblem, detect_format, loads, read_csv, read_jsonl
from costguard.usage.schemas import RecordError, parse_usage


def reference_hash(raw: dict) -> str:
    """The hash as first defined: sha256 of the canonical JSON array of the record's fields."""
    r = parse_usage(raw, currency="USD")
    cost = "0" if r.cost == 0 else format(r.cost.normalize(Context(prec=64)), "f")  # exact, even at 30 digits
    document = [
        r.tenant,
        r.event_id,
        r.timestamp.isoformat(),
        r.pipeline,
        r.model,
        cost,
        r.currency,
        r.kind,
        r.attributes,
    ]
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    "raw",
    [
        {
            "event_id": 'é"x',
            "tenant": "t",
            "timestamp": "2026-01-01T01:00:00+01:00",
            "cost": "0.00000125",
            "attributes": {"b": 1, "a": ["ü", None, {"z": True, "y": "q"}]},
        },
        {
            "event_id": "e",
            "tenant": "t",
            "timestamp": "2026-01-01T01:00:00Z",
            "cost": 5,
            "pipeline": "p",
            "model": "m",
            "kind": "adjustment",
        },
    ],
)
def test_content_hash_matches_the_canonical_document(raw):
    assert parse_usage(raw, currency="USD").content_hash == reference_hash(raw)


def test_json_numbers_are_decimals_and_nan_is_refused_as_a_cost():
    parsed = loads('{"cost": 0.00000125, "n": NaN}')
    assert parsed["cost"] == Decimal("0.00000125")
    with pytest.raises(RecordError) as caught:
        parse_usage(
            {"event_id": "e", "tenant": "t", "timestamp": "2026-01-01T00:00:00Z", "cost": parsed["n"]}, currency="USD"
        )
    assert caught.value.field == "cost"
    assert "finite" in caught.value.message


def test_nan_inside_attributes_is_refused():
    with pytest.raises(RecordError) as caught:
        parse_usage(
            {
                "event_id": "e",
                "tenant": "t",
                "timestamp": "2026-01-01T00:00:00Z",
                "cost": "1",
                "attributes": loads('{"x": NaN}'),
            },
            currency="USD",
        )
    assert caught.value.field == "attributes"


def test_reader_problems_are_yielded_with_their_line_not_raised():
    rows = list(read_jsonl(['{"a": 1}\n', "\n", "{oops\n"], "f.jsonl"))
    assert rows[0] == (1, {"a": 1})
    assert rows[1][0] == 3
    assert isinstance(rows[1][1], RowProblem)
    assert rows[1][1].where == "column 2"
    csv_rows = list(read_csv(["event_id,tenant\n", "a,b,c\n", "x,\n"], "f.csv"))
    assert isinstance(csv_rows[0][1], RowProblem)
    assert csv_rows[1] == (3, {"event_id": "x", "tenant": None})


@pytest.mark.parametrize(
    ("path", "first", "expected"),
    [
        ("u.jsonl.gz", "{}", "jsonl"),
        ("u.csv", "event_id,tenant,timestamp,cost", "csv"),
        ("x.csv", "BilledCost,ChargePeriodStart", "focus"),
        ("-", '{"event_id": "a", "b": 1}', "jsonl"),
        ("-", "event_id,tenant", "csv"),
    ],
)
def test_format_is_detected_by_extension_and_header(path, first, expected):
    assert detect_format(path, first) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=12, min_value=-(10**17), max_value=10**17),
    st.integers(min_value=0, max_value=3),
)
def test_the_fast_cost_path_agrees_with_parse_money(amount, extra_zeros):
    text = format(amount, "f")
    if "." in text:
        text += "0" * extra_zeros
    raw = {"event_id": "e", "tenant": "t", "timestamp": "2026-01-01T00:00:00Z", "cost": text, "kind": "adjustment"}
    parsed = parse_usage(raw, currency="USD")
    assert parsed.cost == parse_money(text)
    assert parsed.content_hash == reference_hash({**raw, "cost": parse_money(text)})


@pytest.mark.parametrize("field", ["tenant", "pipeline", "model", "event_id"])
@pytest.mark.parametrize("value", [["acme"], {"name": "acme"}, 5])
def test_a_name_that_is_not_a_string_is_refused_by_name_not_a_type_error(field, value):
    record = {"event_id": "e", "tenant": "acme", "timestamp": "2026-12-04T10:00:00Z", "cost": "1", field: value}
    with pytest.raises(RecordError) as caught:
        parse_usage(record, currency="USD")
    assert (caught.value.field, caught.value.message) == (field, "must be a string")
