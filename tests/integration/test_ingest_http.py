"""POST /v1/usage refuses every class of bad input with the exact status, naming the field, storing nothing."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from costguard.db import transaction
from costguard.usage.models import UsageRecord
from costguard.usage.repository import count_records, unfolded_deltas
from tests.conftest import Database
from tests.helpers.app import Api, make_api, token, usage


def stored(db: Database) -> int:
    with transaction(db.factory) as session:
        return count_records(session)


def pending_total(db: Database) -> Decimal:
    with transaction(db.factory) as session:
        return sum((delta[5] for delta in unfolded_deltas(session)), Decimal(0))


def post_raw(api: Api, body: bytes, **headers: str) -> Any:
    return api.client.post(
        "/v1/usage", content=body, headers=api.headers("ingest", **{"Content-Type": "application/json", **headers})
    )


@pytest.fixture
def api(db: Database) -> Api:
    api = make_api(db, max_batch_records=50, max_batch_bytes=64 * 1024)
    assert api.post_usage([usage("seed-1", "1.00")]).status_code == 200
    return api


BAD_RECORDS = [
    pytest.param(
        {"event_id": "x", "timestamp": "2026-12-04T10:00:00Z", "cost": "1"}, "tenant", "required", id="tenant-missing"
    ),
    pytest.param(usage("x", "1", tenant="t" * 129), "tenant", "longer than 128", id="tenant-too-long"),
    pytest.param(usage("x" * 257, "1"), "event_id", "longer than 256", id="event-id-too-long"),
    pytest.param(usage("x", "1", timestamp="2026-12-04T10:00:00"), "timestamp", "no UTC offset", id="naive-timestamp"),
    pytest.param(usage("x", "1", timestamp="04/12/2026"), "timestamp", "not RFC 3339", id="timestamp-format"),
    pytest.param(usage("x", "NaN"), "cost", "finite", id="cost-nan-string"),
    pytest.param(usage("x", "Infinity"), "cost", "finite", id="cost-infinity-string"),
    pytest.param(usage("x", "0.0000000000001"), "cost", "12 decimal places", id="cost-13-places"),
    pytest.param(usage("x", "1e30"), "cost", "18 integer digits", id="cost-exponent-out-of-range"),
    pytest.param(usage("x", "-0.5"), "cost", "adjustment", id="negative-usage"),
    pytest.param(usage("x", "1", currency="EUR"), "currency", "USD", id="currency-mismatch"),
    pytest.param(usage("x", "1", kind="refund"), "kind", "usage or adjustment", id="kind-unknown"),
    pytest.param(usage("x", "1", attributes=[1, 2]), "attributes", "JSON object", id="attributes-not-object"),
    pytest.param(usage("x", "1", attributes={"p": "y" * 9000}), "attributes", "8192 bytes", id="attributes-too-large"),
    pytest.param(usage("x", "1", region="eu"), "region", "not a usage record field", id="unknown-field"),
    pytest.param(usage("x", "1", pipeline="*"), "pipeline", "reserved", id="wildcard-scope"),
    pytest.param("not an object", "record", "JSON object", id="record-not-object"),
]


@pytest.mark.parametrize(("record", "field", "reason"), BAD_RECORDS)
def test_each_invalid_record_class_is_refused_naming_the_field_and_nothing_is_stored(api, db, record, field, reason):
    before = stored(db)
    response = api.post_usage([usage("good-1", "2.00"), record])
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["details"] == [{"index": 1, "field": field, "message": body["details"][0]["message"]}]
    assert reason in body["details"][0]["message"]
    assert f"field {field}" in body["error"]
    assert stored(db) == before


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(
            b'[{"event_id": "n", "tenant": "acme", "timestamp": "2026-12-04T10:00:00Z", "cost": NaN}]',
            "finite",
            id="json-nan-literal",
        ),
        pytest.param(
            b'[{"event_id": "n", "tenant": "acme", "timestamp": "2026-12-04T10:00:00Z", "cost": Infinity}]',
            "finite",
            id="json-infinity-literal",
        ),
        pytest.param(
            b'[{"event_id": "n", "tenant": "acme", "timestamp": "2026-12-04T10:00:00Z", "cost": 1e400}]',
            "18 integer digits",
            id="json-exponent-beyond-range",
        ),
        pytest.param(
            b'[{"event_id": "n", "tenant": "acme", "timestamp": "2026-12-04T10:00:00Z", "cost": 1e-13}]',
            "12 decimal places",
            id="json-exponent-too-small",
        ),
    ],
)
def test_json_numbers_that_are_not_exact_finite_costs_are_refused(api, db, text, reason):
    before = stored(db)
    response = post_raw(api, text)
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == "cost"
    assert reason in response.json()["details"][0]["message"]
    assert stored(db) == before


def test_json_number_costs_are_read_exactly_never_through_a_float(api, db):
    body = (
        b'[{"event_id": "tiny", "tenant": "acme", "timestamp": "2026-12-04T10:00:00Z", "cost": 0.00000125},'
        b' {"event_id": "big", "tenant": "acme", "timestamp": "2026-12-04T10:00:00Z", "cost": 123456789012345678.1}]'
    )
    response = post_raw(api, body)
    assert response.status_code == 200, response.text
    with transaction(db.factory) as session:
        costs = dict(session.execute(select(UsageRecord.event_id, UsageRecord.cost)).all())
    assert costs["tiny"] == Decimal("0.00000125")
    assert costs["big"] == Decimal("123456789012345678.1")  # a float would have lost the last digits


def test_an_integer_too_long_to_read_is_refused_not_a_server_error(api, db):
    before = stored(db)
    body = b'[{"event_id": "n", "tenant": "acme", "timestamp": "2026-12-04T10:00:00Z", "cost": ' + b"9" * 5000 + b"}]"
    response = post_raw(api, body)
    assert response.status_code == 422
    assert "number" in response.json()["error"]
    assert stored(db) == before


def test_every_bad_record_is_listed_with_index_field_and_reason(api, db):
    before = stored(db)
    response = api.post_usage([usage("a", "1"), usage("b", "-1"), usage("c", "1", currency="EUR"), {"tenant": "acme"}])
    assert response.status_code == 422
    listed = [(d["index"], d["field"]) for d in response.json()["details"]]
    assert listed == [(1, "cost"), (2, "currency"), (3, "event_id")]
    assert "and 2 more invalid records" in response.json()["error"]
    assert stored(db) == before


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        pytest.param(b"[{", "application/json", "not valid JSON", id="broken-json"),
        pytest.param(b'{"event_id": "x"}', "application/json", "JSON array", id="object-not-array"),
        pytest.param(b"\xff\xfe[]", "application/json", "UTF-8", id="not-utf8"),
        pytest.param(b'{"event_id": "x"}\n{oops\n', "application/x-ndjson", "line 2 column 2", id="ndjson-bad-line"),
    ],
)
def test_unreadable_bodies_are_refused_with_422(api, db, body, content_type, reason):
    before = stored(db)
    response = post_raw(api, body, **{"Content-Type": content_type})
    assert response.status_code == 422, response.text
    assert reason in response.json()["error"]
    assert stored(db) == before


def test_a_key_reused_with_other_content_in_the_batch_is_a_409_naming_the_key(api, db):
    before = stored(db)
    response = api.post_usage([usage("fresh", "1.00"), usage("dup", "1.00"), usage("dup", "2.00")])
    assert response.status_code == 409
    assert "(acme, dup)" in response.json()["error"]
    assert response.json()["details"] == [{"tenant": "acme", "event_id": "dup"}]
    assert stored(db) == before


def test_a_key_reused_with_other_content_than_stored_is_a_409_and_nothing_of_the_batch_is_stored(api, db):
    before = stored(db)
    total = pending_total(db)
    response = api.post_usage([usage("new-1", "3.00"), usage("seed-1", "1.50")])
    assert response.status_code == 409
    assert "(acme, seed-1)" in response.json()["error"]
    assert stored(db) == before
    assert pending_total(db) == total


def test_identical_replays_are_counted_as_duplicates_and_stored_once(api, db):
    batch = [usage("r-1", "0.10"), usage("r-2", "0.20"), usage("r-1", "0.10")]
    assert api.post_usage(batch).json() == {"accepted": 2, "duplicates": 1}
    assert api.post_usage(batch).json() == {"accepted": 0, "duplicates": 3}
    assert stored(db) == 3
    assert pending_total(db) == Decimal("1.30")


def test_too_many_records_is_a_413(api, db):
    before = stored(db)
    response = api.post_usage([usage(f"m-{i}", "1") for i in range(51)])
    assert response.status_code == 413
    assert "51 records, more than 50" in response.json()["error"]
    assert stored(db) == before


def test_a_body_over_the_byte_limit_is_a_413(api, db):
    before = stored(db)
    records = [usage(f"b-{i}", "1", attributes={"pad": "z" * 2000}) for i in range(40)]
    response = api.post_usage(records)
    assert response.status_code == 413
    assert "65536 bytes" in response.json()["error"]
    assert stored(db) == before


def test_a_gzip_body_that_inflates_past_the_limit_is_a_413(api, db):
    before = stored(db)
    bomb = gzip.compress(b"[" + b" " * (10 * 1024 * 1024) + b"]")
    response = post_raw(api, bomb, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "once decompressed" in response.json()["error"]
    assert stored(db) == before


def test_gzip_ndjson_batches_are_accepted(api, db):
    lines = "\n".join(json.dumps(usage(f"z-{i}", "0.5")) for i in range(3)).encode()
    response = post_raw(
        api, gzip.compress(lines), **{"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 3, "duplicates": 0}


@pytest.mark.parametrize(
    ("body", "encoding", "reason"),
    [
        pytest.param(b"not gzip at all", "gzip", "not valid gzip", id="corrupt-gzip"),
        pytest.param(b"[]", "br", "Content-Encoding 'br' is not supported", id="unsupported-encoding"),
    ],
)
def test_bad_content_encoding_is_refused(api, db, body, encoding, reason):
    before = stored(db)
    response = post_raw(api, body, **{"Content-Encoding": encoding})
    assert response.status_code == 422
    assert reason in response.json()["error"]
    assert stored(db) == before


def test_a_tenant_bound_token_cannot_post_another_tenants_usage(api, db):
    before = stored(db)
    secret = token(db, "ingest", tenant="acme", name="acme-ingest")
    response = api.client.post(
        "/v1/usage", json=[usage("t-1", "1", tenant="globex")], headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 403
    assert "tenant" in response.json()["error"]
    assert stored(db) == before


def test_fractional_numbers_in_attributes_are_stored(api, db):
    body = (
        b'[{"event_id": "attr-1", "tenant": "acme", "timestamp": "2026-12-04T10:00:00Z", "cost": "1",'
        b' "attributes": {"latency_s": 0.25, "tokens": 812}}]'
    )
    response = post_raw(api, body)
    assert response.status_code == 200, response.text
    with transaction(db.factory) as session:
        attributes = session.scalar(select(UsageRecord.attributes).where(UsageRecord.event_id == "attr-1"))
    assert attributes == {"latency_s": 0.25, "tokens": 812}


def test_pending_deltas_hold_every_stored_cost_exactly_once(api, db):
    api.post_usage([usage(f"p-{i}", "0.000001", pipeline="sum", model="m") for i in range(30)])
    api.post_usage([usage(f"p-{i}", "0.000001", pipeline="sum", model="m") for i in range(40)])
    with transaction(db.factory) as session:
        stored_sum = session.scalar(select(func.count()).select_from(UsageRecord))
        costs = session.scalars(select(UsageRecord.cost)).all()
    assert stored_sum == 41
    assert pending_total(db) == sum(costs, Decimal(0)) == Decimal("1.00004")


def rejected_counter(api: Api, reason: str) -> float:
    for line in api.client.get("/metrics").text.splitlines():
        if line.startswith(f'costguard_usage_records_rejected_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_refused_records_are_counted_by_reason(api, db):
    invalid, conflict = rejected_counter(api, "invalid"), rejected_counter(api, "conflict")
    api.post_usage([usage("ok", "1"), usage("bad", "-1")])
    api.post_usage([usage("seed-1", "7")])
    assert rejected_counter(api, "invalid") == invalid + 2
    assert rejected_counter(api, "conflict") == conflict + 1


def test_a_chunked_body_of_unknown_length_over_the_limit_is_a_413(api, db):
    before = stored(db)

    def chunks():
        for _ in range(100):
            yield b" " * 1024

    response = api.client.post("/v1/usage", content=chunks(), headers=api.headers("ingest"))
    assert response.status_code == 413
    assert "65536 bytes" in response.json()["error"]
    assert stored(db) == before


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_an_unpaired_surrogate_in_attributes_is_refused_by_name_not_a_server_error(api, db, content_type):
    before = stored(db)
    record = b'{"event_id": "s", "tenant": "acme", "timestamp": "2026-12-04T10:00:00Z", "cost": "1",'
    record += b' "attributes": {"note": "\\ud800"}}'
    body = record if content_type == "application/x-ndjson" else b"[" + record + b"]"
    response = post_raw(api, body, **{"Content-Type": content_type})
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == "attributes"
    assert "Unicode" in response.json()["details"][0]["message"]
    assert stored(db) == before
