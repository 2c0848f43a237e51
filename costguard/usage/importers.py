"""File importers: each yields (line number, raw record) so errors can name the file and line."""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from costguard.usage.schemas import FIELDS

FORMATS = ("auto", "jsonl", "csv", "focus")


class FileFormatError(ValueError):
    """A file that cannot be read as the format it claims; the message names file, line and column."""


def open_text(path: str) -> IO[str]:
    """Open a file (or ``-`` for stdin) as UTF-8 text, transparently un-gzipping ``.gz`` files."""
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="")
    raw = Path(path).open("rb")  # noqa: SIM115 - the returned wrapper owns and closes it
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8", newline="")
    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


def read_jsonl(stream: Iterable[str], name: str) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise FileFormatError(f"{name}:{number}: column {exc.colno}: not valid JSON ({exc.msg})") from None


def read_csv(stream: Iterable[str], name: str) -> Iterator[tuple[int, Any]]:
    """CSV with the usage record's field names as columns; ``attributes`` holds a JSON object."""
    reader = csv.DictReader(stream)
    header = reader.fieldnames or []
    unknown = [column for column in header if column not in FIELDS]
    if unknown:
        raise FileFormatError(f"{name}:1: column {unknown[0]!r} is not a usage record field")
    for row in reader:
        line = reader.line_num
        record: dict[str, Any] = {key: (value if value != "" else None) for key, value in row.items()}
        if record.get("attributes"):
            try:
                record["attributes"] = json.loads(record["attributes"], parse_float=Decimal)
            except json.JSONDecodeError as exc:
                raise FileFormatError(f"{name}:{line}: column attributes: not valid JSON ({exc.msg})") from None
        yield line, record


def detect_format(path: str, first_line: str) -> str:
    lowered = path.lower().removesuffix(".gz")
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lowered.endswith(".csv") or "," in first_line:
        columns = {c.strip().strip('"').lstrip("\ufeff") for c in first_line.split(",")}
        return "focus" if {"ChargePeriodStart", "BilledCost"} & columns else "csv"
    if first_line.lstrip().startswith("{"):
        return "jsonl"
    raise FileFormatError(f"{path}: cannot tell the format; pass --format jsonl, csv or focus")
