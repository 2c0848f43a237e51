"""``costguard ingest``: streaming files, all or nothing per file, --skip-invalid with a rejects file."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from costguard.cli import app
from costguard.config import get_settings
from costguard.db import transaction
from costguard.usage.models import UsageRecord
from costguard.usage.repository import unfolded_deltas
from tests.conftest import Database
from tests.helpers.app import usage


def run(db: Database, *args: str, stdin: bytes | None = None) -> Any:
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["ingest", *args], input=stdin, env={"COSTGUARD_DATABASE_URL": db.url})
    finally:
        get_settings.cache_clear()


def records(db: Database) -> dict[str, Decimal]:
    with transaction(db.factory) as session:
        return dict(session.execute(select(UsageRecord.event_id, UsageRecord.cost)).all())


def pending_total(db: Database) -> Decimal:
    with transaction(db.factory) as session:
        return sum((delta[5] for delta in unfolded_deltas(session)), Decimal(0))


def jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def summary(result: Any) -> str:
    return result.stdout.strip().splitlines()[-1]


def test_a_jsonl_file_is_ingested_and_a_second_import_is_a_no_op(db, tmp_path):
    path = jsonl(tmp_path / "usage.jsonl", [usage(f"e-{i}", "0.00000125") for i in range(12)])
    first = run(db, str(path))
    assert first.exit_code == 0, first.output
    assert summary(first).startswith("accepted 12, duplicates 0, rejected 0 (")
    assert summary(first).endswith(" records/s)")
    second = run(db, str(path))
    assert summary(second).startswith("accepted 0, duplicates 12, rejected 0")
    assert len(records(db)) == 12
    assert pending_total(db) == Decimal("0.000015")


def test_csv_and_gzip_files_are_read(db, tmp_path):
    csv_path = tmp_path / "usage.csv"
    csv_path.write_text(
        "event_id,timestamp,tenant,pipeline,model,cost,kind,attributes\n"
        'c-1,2026-12-04T10:00:00Z,acme,summarize,gpt-4o,0.0123,usage,"{""input_tokens"": 812}"\n'
        "c-2,2026-12-04T10:05:00+01:00,acme,,,-1.5,adjustment,\n"
    )
    gz_path = tmp_path / "more.jsonl.gz"
    gz_path.write_bytes(gzip.compress(json.dumps(usage("g-1", "2")).encode() + b"\n"))
    result = run(db, str(csv_path), str(gz_path))
    assert result.exit_code == 0, result.output
    assert records(db) == {"c-1": Decimal("0.0123"), "c-2": Decimal("-1.5"), "g-1": Decimal(2)}


def test_stdin_is_read_with_a_dash_even_gzipped(db):
    body = gzip.compress(b"".join(json.dumps(usage(f"s-{i}", "1")).encode() + b"\n" for i in range(3)))
    result = run(db, "-", stdin=body)
    assert result.exit_code == 0, result.output
    assert summary(result).startswith("accepted 3, duplicates 0, rejected 0")


def test_an_invalid_line_refuses_the_whole_file_naming_file_and_line(db, tmp_path):
    rows: list[Any] = [usage(f"ok-{i}", "1") for i in range(5)]
    rows.insert(3, usage("bad", "1", timestamp="2026-12-04T10:00:00"))
    rows.append("{not json")
    path = jsonl(tmp_path / "usage.jsonl", rows)
    result = run(db, str(path))
    assert result.exit_code == 1
    assert f"{path}:4: timestamp: '2026-12-04T10:00:00' has no UTC offset" in result.stderr
    assert f"{path}:7: column 2: not valid JSON" in result.stderr
    assert "nothing from" in result.stderr
    assert summary(result).startswith("accepted 0, duplicates 0, rejected 2")
    assert records(db) == {}
    assert pending_total(db) == 0


def test_skip_invalid_stores_good_rows_and_writes_rejects_with_reasons(db, tmp_path):
    path = jsonl(
        tmp_path / "usage.jsonl",
        [usage("a", "1"), usage("b", "NaN"), "{broken", usage("c", "2", currency="EUR"), usage("d", "3")],
    )
    rejects = tmp_path / "out" / "rejected.jsonl"
    rejects.parent.mkdir()
    result = run(db, str(path), "--skip-invalid", "--rejects", str(rejects))
    assert result.exit_code == 0, result.output
    assert summary(result).startswith("accepted 2, duplicates 0, rejected 3")
    assert records(db) == {"a": Decimal(1), "d": Decimal(3)}
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in lines] == [(2, "cost"), (3, "column 2"), (4, "currency")]
    assert "finite" in lines[0]["reason"]
    assert lines[0]["record"]["event_id"] == "b"
    assert lines[1]["text"] == "{broken"


def test_skip_invalid_writes_rejects_next_to_the_input_by_default(db, tmp_path):
    path = jsonl(tmp_path / "usage.jsonl", [usage("a", "1"), usage("b", "-1")])
    result = run(db, str(path), "--skip-invalid")
    assert result.exit_code == 0, result.output
    written = Path(f"{path}.rejects.jsonl")
    assert json.loads(written.read_text())["field"] == "cost"


def test_a_conflicting_key_refuses_the_file_naming_the_key(db, tmp_path):
    jsonl(tmp_path / "first.jsonl", [usage("k-1", "1")])
    assert run(db, str(tmp_path / "first.jsonl")).exit_code == 0
    path = jsonl(tmp_path / "second.jsonl", [usage("k-2", "1"), usage("k-1", "9")])
    result = run(db, str(path))
    assert result.exit_code == 1
    assert "(acme, k-1)" in result.stderr
    assert records(db) == {"k-1": Decimal(1)}


def test_identical_rows_within_a_file_count_as_duplicates_across_chunks(db, tmp_path, monkeypatch):
    monkeypatch.setattr("costguard.usage.service.SQLITE_CHUNK", 4)
    rows = [usage(f"d-{i % 7}", "0.5") for i in range(20)]
    result = run(db, str(jsonl(tmp_path / "usage.jsonl", rows)))
    assert summary(result).startswith("accepted 7, duplicates 13, rejected 0")
    assert pending_total(db) == Decimal("3.5")


def test_one_bad_file_does_not_stop_the_others(db, tmp_path):
    good = jsonl(tmp_path / "good.jsonl", [usage("g", "1")])
    bad = jsonl(tmp_path / "bad.jsonl", [usage("b", "x")])
    result = run(db, str(bad), str(good))
    assert result.exit_code == 1
    assert summary(result).startswith("accepted 1, duplicates 0, rejected 1")
    assert records(db) == {"g": Decimal(1)}


def test_a_missing_file_is_named(db, tmp_path):
    result = run(db, str(tmp_path / "absent.jsonl"))
    assert result.exit_code == 1
    assert "absent.jsonl cannot be read" in result.stderr


@pytest.mark.parametrize("flag", ["--rejects"])
def test_rejects_without_skip_invalid_is_refused(db, tmp_path, flag):
    result = run(db, str(tmp_path / "x.jsonl"), flag, str(tmp_path / "r.jsonl"))
    assert result.exit_code == 1
    assert "--rejects needs --skip-invalid" in result.stderr
